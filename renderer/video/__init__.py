"""The personal video: template scenes drawn as stills with Pillow, encoded and joined by ffmpeg.

A template (`templates/video/<name>.json`, see `template`) lists scenes; each is drawn once per
debtor (personal) or once per campaign, language and tone (invariant) into one 1280×720 RGB
image (`scenes`, with text from `typeset` and colours from `palette`). `encode` turns stills into
H.264 segments with fades, `segments` keeps invariant ones in a `SegmentCache` (`cache`), and
`render` joins everything with one continuous AAC track without re-encoding. Captions (WebVTT,
`captions`) and the poster come from the very same scene data, so texts and timings always
agree. Text is only ever drawn by Pillow: nothing from the portfolio reaches a filter graph or
a shell.
"""

from renderer.video.captions import render_captions
from renderer.video.render import render_poster, render_video, video_duration, warm
from renderer.video.template import Line, Scene, video_ctas

__all__ = [
    "Line",
    "Scene",
    "render_captions",
    "render_poster",
    "render_video",
    "video_ctas",
    "video_duration",
    "warm",
]
