{{/* The release's name prefix of every object. */}}
{{- define "fieldstream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels selecting one component: dict "ctx" $ "component" NAME */}}
{{- define "fieldstream.selectorLabels" -}}
app.kubernetes.io/name: fieldstream
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of one component's objects: dict "ctx" $ "component" NAME */}}
{{- define "fieldstream.labels" -}}
{{ include "fieldstream.selectorLabels" . }}
app.kubernetes.io/part-of: fieldstream
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* The image of a binary: dict "ctx" $ "binary" NAME */}}
{{- define "fieldstream.image" -}}
{{- $i := .ctx.Values.image -}}
{{- printf "%s%s/%s:%s" ($i.registry | default "") $i.repository .binary ($i.tag | default .ctx.Chart.AppVersion) -}}
{{- end -}}

{{/*
A service's Deployment: dict with
  ctx        the root context
  component  the object name suffix and component label (gateway, assets, poller-acme…)
  binary     the image's binary
  user       the NATS user (its nkey seed, its inbox prefix)
  replicas, port, args, env, resources, terminationGracePeriodSeconds
  addrEnv    the FS_ variable of the HTTP listen address (FS_HTTP_ADDR, FS_METRICS_ADDR…)
  fsctl      true: the operator tool, which takes its address and NATS settings as the nats
             CLI does (args, NATS_* in extraEnv) instead of FS_* variables
  preStopSleepSeconds  optional
  servicetrade         true: the ServiceTrade client secret
  extraEnv   optional list of env entries
  strategy   optional deployment strategy
*/}}
{{- define "fieldstream.deployment" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- $name := printf "%s-%s" (include "fieldstream.fullname" $ctx) .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "fieldstream.labels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
spec:
  replicas: {{ .replicas }}
  revisionHistoryLimit: 5
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "fieldstream.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fieldstream.labels" (dict "ctx" $ctx "component" .component) | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ .terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $v.topologySpread }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "fieldstream.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 14 }}
      {{- end }}
      containers:
        - name: {{ .binary }}
          image: {{ include "fieldstream.image" (dict "ctx" $ctx "binary" .binary) | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          env:
            {{- if not .fsctl }}
            - name: {{ .addrEnv }}
              value: {{ printf "0.0.0.0:%v" .port | quote }}
            {{- include "fieldstream.natsEnv" (dict "ctx" $ctx "user" .user) | nindent 12 }}
            {{- end }}
            {{- if .servicetrade }}
            {{- include "fieldstream.servicetradeEnv" $ctx | nindent 12 }}
            {{- end }}
            {{- with .extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- include "fieldstream.commonEnv" (dict "ctx" $ctx "service" .binary "container" .binary) | nindent 12 }}
            {{- range $k, $val := (merge (dict) (.env | default dict) $v.env) }}
            - name: {{ $k }}
              value: {{ $val | quote }}
            {{- end }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          {{- with .preStopSleepSeconds }}
          lifecycle:
            preStop:
              sleep: {seconds: {{ . }}}
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "fieldstream.natsVolumeMounts" $ctx | nindent 12 }}
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "fieldstream.natsVolumes" (dict "ctx" $ctx "user" .user) | nindent 8 }}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
{{- end -}}

{{/* The NATS connection of user as FS_NATS_* variables: dict "ctx" $ "user" NAME */}}
{{- define "fieldstream.natsEnv" -}}
{{- $n := .ctx.Values.nats -}}
- name: FS_NATS_URL
  value: {{ $n.url | quote }}
- name: FS_NATS_NKEY
  value: {{ printf "/etc/fieldstream/nkeys/%s.nk" .user | quote }}
- name: FS_NATS_TLS_CA
  value: {{ printf "/etc/fieldstream/tls/ca/%s" $n.tls.caKey | quote }}
{{- if $n.tls.clientSecret }}
- name: FS_NATS_TLS_CERT
  value: /etc/fieldstream/tls/client/tls.crt
- name: FS_NATS_TLS_KEY
  value: /etc/fieldstream/tls/client/tls.key
{{- end }}
- name: FS_NATS_INBOX_PREFIX
  value: {{ printf "_INBOX_%s" .user | quote }}
{{- end -}}

{{/* The volumes of the NATS credentials: only user's own seed. dict "ctx" $ "user" NAME */}}
{{- define "fieldstream.natsVolumes" -}}
{{- $n := .ctx.Values.nats -}}
- name: nkey
  secret:
    secretName: {{ $n.nkeysSecret }}
    defaultMode: 0440
    items:
      - key: {{ printf "%s.nk" .user }}
        path: {{ printf "%s.nk" .user }}
- name: nats-ca
  secret:
    secretName: {{ $n.tls.caSecret }}
    defaultMode: 0444
    items:
      - key: {{ $n.tls.caKey }}
        path: {{ $n.tls.caKey }}
{{- if $n.tls.clientSecret }}
- name: nats-client-tls
  secret:
    secretName: {{ $n.tls.clientSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "fieldstream.natsVolumeMounts" -}}
- name: nkey
  mountPath: /etc/fieldstream/nkeys
  readOnly: true
- name: nats-ca
  mountPath: /etc/fieldstream/tls/ca
  readOnly: true
{{- if .Values.nats.tls.clientSecret }}
- name: nats-client-tls
  mountPath: /etc/fieldstream/tls/client
  readOnly: true
{{- end }}
{{- end -}}

{{/* The ServiceTrade API and its client secret. */}}
{{- define "fieldstream.servicetradeEnv" -}}
- name: FS_SERVICETRADE_URL
  value: {{ .Values.servicetrade.url | quote }}
- name: FS_SERVICETRADE_CLIENT_ID
  value: {{ .Values.servicetrade.clientID | quote }}
- name: FS_SERVICETRADE_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.servicetrade.clientSecret.name }}
      key: {{ .Values.servicetrade.clientSecret.key }}
{{- end -}}

{{/* Logging, Go's memory limit and tracing: dict "ctx" $ "service" NAME "container" NAME */}}
{{- define "fieldstream.commonEnv" -}}
{{- $v := .ctx.Values -}}
- name: FS_LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: FS_LOG_FORMAT
  value: json
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      containerName: {{ .container }}
      resource: limits.memory
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.namespace=%s,k8s.pod.name=$(POD_NAME),service.version=%s" .ctx.Release.Namespace ($v.image.tag | default .ctx.Chart.AppVersion) | quote }}
{{- with $v.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $v.tracing.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $v.tracing.samplerArg | quote }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget: dict "ctx" $ "component" NAME "pdb" VALUES */}}
{{- define "fieldstream.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ printf "%s-%s" (include "fieldstream.fullname" .ctx) .component }}
  labels:
    {{- include "fieldstream.labels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
spec:
  {{- if hasKey .pdb "minAvailable" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable | default 1 }}
  {{- end }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "fieldstream.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end -}}
