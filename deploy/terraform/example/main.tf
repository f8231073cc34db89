# Applies fieldstream's JetStream resources to a cluster as its admin user, over TLS:
#
#   terraform init && terraform apply -var servers=tls://nats.fieldstream.svc:4222
variable "servers" {
  description = "NATS URLs, comma-separated."
  type        = string
}

variable "admin_nkey" {
  description = "File holding the admin user's nkey seed."
  type        = string
  default     = "../../dev/nkeys/admin.nk"
}

variable "ca_file" {
  description = "CA certificate the NATS servers' certificates are signed by."
  type        = string
  default     = "../../dev/tls/ca.pem"
}

provider "jetstream" {
  servers = var.servers
  nkey    = var.admin_nkey

  tls {
    ca_file = var.ca_file
  }
}

module "fieldstream_jetstream" {
  source   = "../jetstream"
  replicas = 3
}

output "streams" {
  value = module.fieldstream_jetstream.streams
}
