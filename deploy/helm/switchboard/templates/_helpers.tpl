{{/* Chart name, overridable. */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name of every object; pods are <fullname>-0, -1, ... (their NODE_ID). */}}
{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "switchboard.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "switchboard.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pods load: the operator's, or the chart's. */}}
{{- define "switchboard.secretName" -}}
{{- default (include "switchboard.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* A setting from config, else the server's default (README.md). */}}
{{- define "switchboard.setting" -}}
{{- $name := index . 1 }}
{{- $defaults := dict "PORT" "8080" "METRICS_PORT" "9464" "TURN_PORT" "3478" "TURN_TLS_PORT" "5349" "TURN_MIN_PORT" "49152" "TURN_MAX_PORT" "65535" "SFU_PORT" "7882" "SHUTDOWN_TIMEOUT_MS" "10000" "SHUTDOWN_DRAIN_MS" "0" "TURN_ENABLED" "true" "TURN_TCP" "true" "SFU_ENABLED" "true" }}
{{- toString (index (index . 0).Values.config $name | default (index $defaults $name)) }}
{{- end }}
