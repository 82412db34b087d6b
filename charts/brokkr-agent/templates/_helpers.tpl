{{/*
Helpers shared by the agent chart's templates: names and labels, the settings-to-environment
mapping, and the checks that refuse contradictory values.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "brokkr-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>" (or fullnameOverride), the name of every object of the agent. */}}
{{- define "brokkr-agent.fullname" -}}
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

{{- define "brokkr-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "brokkr-agent.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "brokkr-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brokkr-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "brokkr-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "brokkr-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brokkr
{{- end -}}

{{- define "brokkr-agent.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The namespace the agent manages with rbac.scope=namespace. */}}
{{- define "brokkr-agent.managedNamespace" -}}
{{- default .Release.Namespace .Values.rbac.namespace -}}
{{- end -}}

{{/*
A setting's value as the agent parses it. Helm reads YAML numbers as floats, which would print
large ones in exponent form; whole numbers are printed as integers instead.
*/}}
{{- define "brokkr-agent.settingValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/*
The settings tree under `config` as environment variables: the leaf at path a.b.c becomes
BROKKR_A__B__C, the name the agent reads (docs/reference/agent-settings.md). Empty strings stay
unset. Called with (dict "prefix" "BROKKR_" "tree" .Values.config).
*/}}
{{- define "brokkr-agent.settingsEnv" -}}
{{- $prefix := .prefix -}}
{{- range $key, $value := .tree }}
{{- $name := printf "%s%s" $prefix (upper $key) }}
{{- if kindIs "map" $value }}
{{- include "brokkr-agent.settingsEnv" (dict "prefix" (printf "%s__" $name) "tree" $value) }}
{{- else if not (and (kindIs "string" $value) (eq $value "")) }}
- name: {{ $name }}
  value: {{ include "brokkr-agent.settingValue" $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Refuses values that cannot work, each with the fix in its message. */}}
{{- define "brokkr-agent.validate" -}}
{{- if not .Values.config.broker.address -}}
{{- fail "config.broker.address is required: the broker's gRPC address as this cluster reaches it, e.g. brokkr.example.com:50051" -}}
{{- end -}}
{{- if and .Values.agentKey.value .Values.agentKey.existingSecret -}}
{{- fail "agentKey: set value or existingSecret, not both" -}}
{{- end -}}
{{- if not (or .Values.agentKey.value .Values.agentKey.existingSecret) -}}
{{- fail "agentKey is required: create the agent on the broker (brokkrctl agents create), put its key in a Secret, and set agentKey.existingSecret (or agentKey.value)" -}}
{{- end -}}
{{- end -}}
