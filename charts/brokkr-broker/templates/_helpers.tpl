{{/*
Helpers shared by the broker chart's templates: names and labels, the database mode, the
settings-to-environment mapping, and the checks that refuse contradictory values.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "brokkr-broker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>" (or fullnameOverride), the name of every object of the broker itself. */}}
{{- define "brokkr-broker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the evaluation PostgreSQL's objects; short enough for the suffix to survive. */}}
{{- define "brokkr-broker.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "brokkr-broker.fullname" . | trunc 52 | trimSuffix "-") -}}
{{- end -}}

{{- define "brokkr-broker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "brokkr-broker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object of the release. */}}
{{- define "brokkr-broker.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "brokkr-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brokkr
{{- end -}}

{{/* Selects the broker pods; never matches the evaluation PostgreSQL. */}}
{{- define "brokkr-broker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brokkr-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: broker
{{- end -}}

{{- define "brokkr-broker.labels" -}}
{{ include "brokkr-broker.commonLabels" . }}
app.kubernetes.io/component: broker
{{- end -}}

{{- define "brokkr-broker.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brokkr-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: postgresql
{{- end -}}

{{- define "brokkr-broker.postgresql.labels" -}}
{{ include "brokkr-broker.commonLabels" . }}
app.kubernetes.io/component: postgresql
{{- end -}}

{{- define "brokkr-broker.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Where state lives: "external" (your PostgreSQL), "postgresql" (the evaluation one) or "sqlite".
*/}}
{{- define "brokkr-broker.databaseMode" -}}
{{- $external := .Values.database.external -}}
{{- if and $external.url $external.existingSecret -}}
{{- fail "database.external: set url or existingSecret, not both" -}}
{{- end -}}
{{- if and (or $external.url $external.existingSecret) .Values.postgresql.enabled -}}
{{- fail "database.external and postgresql.enabled exclude each other: use your PostgreSQL or the evaluation one" -}}
{{- end -}}
{{- if or $external.url $external.existingSecret -}}
external
{{- else if .Values.postgresql.enabled -}}
postgresql
{{- else -}}
sqlite
{{- end -}}
{{- end -}}

{{/* Where the SQLite file lives in the pod. */}}
{{- define "brokkr-broker.sqliteDirectory" -}}
/var/lib/brokkr
{{- end -}}

{{/*
A setting's value as the broker parses it. Helm reads YAML numbers as floats, which would print
16777216 as 1.6777216e+07; whole numbers are printed as integers instead.
*/}}
{{- define "brokkr-broker.settingValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/*
The settings tree under `config` as environment variables: the leaf at path a.b.c becomes
BROKKR_A__B__C, the name the broker reads (docs/reference/settings.md). Empty strings stay unset.
Called with (dict "prefix" "BROKKR_" "tree" .Values.config).
*/}}
{{- define "brokkr-broker.settingsEnv" -}}
{{- $prefix := .prefix -}}
{{- range $key, $value := .tree }}
{{- $name := printf "%s%s" $prefix (upper $key) }}
{{- if kindIs "map" $value }}
{{- include "brokkr-broker.settingsEnv" (dict "prefix" (printf "%s__" $name) "tree" $value) }}
{{- else if not (and (kindIs "string" $value) (eq $value "")) }}
- name: {{ $name }}
  value: {{ include "brokkr-broker.settingValue" $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
An environment variable read from a Secret: the user's existing Secret when named, else the
chart's own Secret under `key`. Called with (dict "root" $ "env" NAME "source" VALUES "key" KEY),
where VALUES has existingSecret and existingSecretKey.
*/}}
{{- define "brokkr-broker.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      {{- if .source.existingSecret }}
      name: {{ .source.existingSecret }}
      key: {{ .source.existingSecretKey }}
      {{- else }}
      name: {{ include "brokkr-broker.fullname" .root }}
      key: {{ .key }}
      {{- end }}
{{- end -}}

{{/* The entries of the chart's own Secret: only values given inline. */}}
{{- define "brokkr-broker.secretData" -}}
{{- if .Values.database.external.url }}
database-url: {{ .Values.database.external.url | b64enc | quote }}
{{- end }}
{{- if .Values.adminKey.hash }}
admin-key-hash: {{ .Values.adminKey.hash | b64enc | quote }}
{{- end }}
{{- if .Values.webhooks.encryptionKey }}
webhooks-encryption-key: {{ .Values.webhooks.encryptionKey | b64enc | quote }}
{{- end }}
{{- end -}}

{{/*
How a probe asks: the gRPC health service, or over HTTP when TLS is on (kubelet gRPC probes
cannot speak TLS; /healthz and /readyz on the REST port ask the same health service over the
broker's loopback port). Called with (dict "root" $ "path" "/readyz").
*/}}
{{- define "brokkr-broker.probeAction" -}}
{{- if .root.Values.tls.certificateSecret -}}
httpGet:
  path: {{ .path }}
  port: http
{{- else -}}
grpc:
  port: {{ include "brokkr-broker.settingValue" .root.Values.config.grpc.port }}
{{- end -}}
{{- end -}}

{{/* Refuses values that cannot work together, each with the fix in its message. */}}
{{- define "brokkr-broker.validate" -}}
{{- $mode := include "brokkr-broker.databaseMode" . -}}
{{- if and (eq $mode "sqlite") (or (ne (int .Values.replicaCount) 1) .Values.autoscaling.enabled) -}}
{{- fail (printf "the embedded SQLite database supports exactly one broker replica (replicaCount=%v, autoscaling.enabled=%v): set replicaCount=1 and autoscaling.enabled=false, or give the broker PostgreSQL with database.external.url / database.external.existingSecret (or postgresql.enabled=true for evaluation)" .Values.replicaCount .Values.autoscaling.enabled) -}}
{{- end -}}
{{- if and .Values.tls.clientCA.secret (not .Values.tls.certificateSecret) -}}
{{- fail "tls.clientCA.secret (mutual TLS) needs tls.certificateSecret: the broker must serve TLS to ask for client certificates" -}}
{{- end -}}
{{- if and .Values.tls.certificateSecret (not .Values.config.rest.enabled) -}}
{{- fail "tls.certificateSecret needs config.rest.enabled=true: kubelet gRPC probes cannot speak TLS, so the probes use /healthz and /readyz on the REST port" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.config.rest.enabled) -}}
{{- fail "serviceMonitor.enabled needs config.rest.enabled=true: /metrics is served on the REST port" -}}
{{- end -}}
{{- if le (float64 .Values.terminationGracePeriodSeconds) (float64 .Values.config.grpc.shutdown_grace_seconds) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than config.grpc.shutdown_grace_seconds (%v), or Kubernetes kills the broker while calls drain" .Values.terminationGracePeriodSeconds .Values.config.grpc.shutdown_grace_seconds) -}}
{{- end -}}
{{- $pdb := .Values.podDisruptionBudget -}}
{{- if and (ne (toString $pdb.minAvailable) "") (ne (toString $pdb.maxUnavailable) "") -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to \"\")" -}}
{{- end -}}
{{- if .Values.autoscaling.enabled -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if not (or .Values.autoscaling.targetCPUUtilizationPercentage .Values.autoscaling.targetMemoryUtilizationPercentage) -}}
{{- fail "autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage above 0" -}}
{{- end -}}
{{- end -}}
{{- end -}}
