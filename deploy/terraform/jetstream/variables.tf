variable "replicas" {
  description = "Replicas of every stream and bucket: 3 on a three-node JetStream cluster, 1 on a single server (as fsctl setup --replicas)."
  type        = number
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.replicas)
    error_message = "JetStream replicas are 1, 3 or 5."
  }
}
