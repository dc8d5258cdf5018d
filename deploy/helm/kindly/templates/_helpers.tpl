{{/* Names, labels and the parts every Kindly pod shares. */}}

{{- define "kindly.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for every object: "<release>-kindly", or the release alone when it
already says kindly. Component names are appended, so it stays well under 63 characters. */}}
{{- define "kindly.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kindly.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "web") */}}
{{- define "kindly.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kindly.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* A pod's labels: (dict "root" $ "component" "web" "metrics" true); "kindly.io/metrics"
marks the pods that the metrics Service (metrics.serviceMonitor) selects. */}}
{{- define "kindly.podLabels" -}}
{{ include "kindly.selectorLabels" . }}
{{- if and .metrics .root.Values.metrics.enabled }}
kindly.io/metrics: "true"
{{- end }}
{{- with .root.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Every label of one component's objects: (dict "root" $ "component" "web") */}}
{{- define "kindly.labels" -}}
helm.sh/chart: {{ include "kindly.chart" .root }}
{{ include "kindly.selectorLabels" . }}
app.kubernetes.io/part-of: kindly
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "kindly.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The environment of every Kindly process: plain settings, then secrets by reference.
(dict "root" $ "metrics" true "env" (list …)): long-running processes serve metrics, one-shot
ones don't; "env" adds the component's own variables. */}}
{{- define "kindly.env" -}}
{{- $root := .root -}}
{{- $config := $root.Values.config -}}
{{- $settings := dict
  "KINDLY_ENV" $config.env
  "KINDLY_BASE_URL" $config.baseUrl
  "KINDLY_PAYMENTS" $config.payments
  "KINDLY_STORAGE_URL" $config.storageUrl
  "KINDLY_S3_ENDPOINT_URL" $config.s3EndpointUrl
  "KINDLY_S3_PUBLIC_ENDPOINT_URL" $config.s3PublicEndpointUrl
  "AWS_DEFAULT_REGION" $config.awsRegion
  "KINDLY_TRUSTED_PROXIES" $config.trustedProxies
  "KINDLY_OUTBOX" $config.outbox
-}}
{{- range $name, $value := $settings }}
{{- if not (eq (toString $value) "") }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
- name: KINDLY_DATA_DIR
  value: /data
# the home folder is on the read-only root filesystem: fontconfig's cache and gunicorn's
# control socket ($XDG_RUNTIME_DIR/gunicorn.ctl, else ~/.gunicorn) go to /tmp instead
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: XDG_RUNTIME_DIR
  value: /tmp
{{- if and .metrics $root.Values.metrics.enabled }}
- name: KINDLY_METRICS_PORT
  value: {{ $root.Values.metrics.port | toString | quote }}
{{- end }}
{{- range $name, $value := $config.extra }}
{{- if regexMatch "SECRET|PASSWORD|TOKEN|_KEY$|KEY_ID$|DATABASE_URL|REDIS_URL|SMTP_URL|SMS_WEBHOOK_URL" $name }}
{{- fail (printf "config.extra.%s looks like a secret: put it in the Secret named by secrets.existingSecret (or secrets.fromSecrets), never in values" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .env }}
{{ toYaml . }}
{{- end }}
{{- range $name, $ref := $root.Values.secrets.fromSecrets }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "secrets.fromSecrets.%s needs a name" $name) $ref.name }}
      key: {{ required (printf "secrets.fromSecrets.%s needs a key" $name) $ref.key }}
{{- end }}
{{- end -}}

{{- define "kindly.envFrom" -}}
{{- if .Values.secrets.existingSecret }}
envFrom:
  - secretRef:
      name: {{ .Values.secrets.existingSecret }}
{{- end }}
{{- end -}}

{{/* The pod-level parts every Kindly pod shares (under spec.template.spec). */}}
{{- define "kindly.podSpec" -}}
{{- if .Values.serviceAccountName }}
serviceAccountName: {{ .Values.serviceAccountName }}
{{- end }}
automountServiceAccountToken: false
# compose's `init: true`: the pod's pause process becomes PID 1 and reaps the ffmpeg and
# render children that exit after their parent; Kindly's process gets SIGTERM as before
shareProcessNamespace: true
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      {{- with .Values.tmp.medium }}
      medium: {{ . }}
      {{- end }}
      sizeLimit: {{ .Values.tmp.sizeLimit }}
  - name: data
    {{- if .Values.data.existingClaim }}
    persistentVolumeClaim:
      claimName: {{ .Values.data.existingClaim }}
    {{- else }}
    emptyDir:
      sizeLimit: {{ .Values.data.sizeLimit }}
    {{- end }}
{{- end -}}

{{/* The container-level parts every Kindly container shares: as for "kindly.env" */}}
{{- define "kindly.container" -}}
image: {{ include "kindly.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
env:
  {{- include "kindly.env" . | trim | nindent 2 }}
{{- include "kindly.envFrom" .root }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: data
    mountPath: /data
{{- end -}}

{{/* The metrics port of a long-running container. */}}
{{- define "kindly.metricsPort" -}}
{{- if .Values.metrics.enabled }}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/* Pod annotations: Prometheus' scrape hints, then the global and the component's own.
(dict "root" $ "own" .podAnnotations "metrics" true); one-shot pods serve no metrics. */}}
{{- define "kindly.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if and .metrics .root.Values.metrics.enabled .root.Values.metrics.podAnnotations -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString .root.Values.metrics.port) -}}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- $annotations = merge (deepCopy (default (dict) .own)) (deepCopy .root.Values.podAnnotations) $annotations -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling constraints: the component's own, else the global ones.
(dict "root" $ "own" $component) */}}
{{- define "kindly.scheduling" -}}
{{- with (default .root.Values.nodeSelector .own.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.tolerations .own.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.affinity .own.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .own.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
