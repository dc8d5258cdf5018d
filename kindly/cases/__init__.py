"""A case's one truth: what state a debtor's claim is in, derived from its events, and the
holds a person placed on it. Sending, the page, the video, the cockpit, the funnel and the
webhooks all ask here instead of reading events of their own."""
