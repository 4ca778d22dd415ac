"""The `local` runtime: the seed's docker-compose file as Pulumi resources on the local daemon."""
