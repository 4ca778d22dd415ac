"""The ECR repository the service image is pushed to (or promoted into)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# The content tags ContainerImage pushes (infra/image.py): `sha-<16 hex>`.
IMAGE_TAG_PATTERN = "sha-*"
# What pulling an image takes: a task's execution role, another account's promotion copy.
PULL_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
)


def lifecycle_rules(keep_images: int, tag_pattern: str = IMAGE_TAG_PATTERN) -> dict[str, object]:
    """Untagged images go after a day, tagged builds beyond the newest `keep_images`.

    Untagged manifests are leftovers (an interrupted push, the children of an expired index).
    The per-platform and attestation manifests of a *kept* index are untagged too, but ECR
    leaves them alone: "If an image is referenced by a manifest list, it cannot be expired
    ... without the manifest list being deleted ... first" (ECR lifecycle evaluation rules).
    Counting `any` instead would let those children take the places meant for builds.
    """
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images after a day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the newest {keep_images} builds",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [tag_pattern],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images,
                },
                "action": {"type": "expire"},
            },
        ]
    }


@dataclass(frozen=True)
class RegistryArgs:
    keep_images: int
    # Ephemeral stacks delete their images with the repository on `pulumi destroy`.
    force_delete: bool = False
    # The tags the lifecycle keeps the newest `keep_images` of: builds, or promoted copies.
    tag_pattern: str = IMAGE_TAG_PATTERN
    # Accounts that may pull (a production account promoting from this one).
    reader_accounts: Sequence[str] = ()


class Registry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    registry_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-repo",
            # ECR.2: a tag, once pushed, always names the same image. Tags hash every build
            # input (infra/image.py), so re-running an unchanged build pushes nothing and a
            # changed one pushes under a new tag: never an overwrite.
            image_tag_mutability="IMMUTABLE",
            # ECR.1: every pushed image is scanned.
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            force_delete=args.force_delete,
            opts=child,
        )
        # ECR.3: a lifecycle policy keeps the last N images.
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_rules(args.keep_images, args.tag_pattern)),
            opts=child,
        )
        if args.reader_accounts:
            partition = aws.get_partition_output(
                opts=pulumi.InvokeOutputOptions(parent=self)
            ).partition
            aws.ecr.RepositoryPolicy(
                f"{name}-readers",
                repository=repository.name,
                policy=pulumi.Output.json_dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "PromotionReaders",
                                "Effect": "Allow",
                                "Principal": {
                                    "AWS": [
                                        pulumi.Output.concat("arn:", partition, f":iam::{a}:root")
                                        for a in args.reader_accounts
                                    ]
                                },
                                "Action": list(PULL_ACTIONS),
                            }
                        ],
                    }
                ),
                opts=child,
            )
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.registry_id = repository.registry_id
        self.register_outputs({"repositoryUrl": self.repository_url})
