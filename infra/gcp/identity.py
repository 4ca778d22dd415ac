"""Keyless GitHub Actions access to a GCP project: a Workload Identity pool with GitHub's OIDC
provider, and one service account per GitHub environment that only that environment's jobs of
one repository can impersonate.

Outputs: `provider_name` (the full provider resource name, what google-github-actions/auth
takes as `workload_identity_provider`), `service_accounts` (kind -> email), `members` (kind ->
`serviceAccount:email`, for grants such as `ArtifactRegistryArgs.writers`),
`runtime_service_accounts` (deploy kind -> email of the account its Cloud Run services run
as) and `pool_name`.

No account here may become more than it is. A deploy account holds one custom role with the
permissions `pulumi up` needs on the gcp stacks' resource types (Cloud Run, Cloud SQL,
Memorystore, Secret Manager, Monitoring, the VPC pieces, Artifact Registry, the load balancer,
Cloud Armor and Cloud DNS records); of IAM it may
change only the policies of Cloud Run services (who may invoke) and of secrets (who may read).
It cannot grant a project role, create keys, mint tokens, or edit the pool, the provider, the
custom roles or any service account's policy, its own included. It may act as exactly one
account, its environment's runtime account (`iam.serviceAccountUser` on that account, never
on the project), which holds no project role at all. Changes to this component are therefore made by
an administrator's `pulumi up`, as on AWS (docs/aws-accounts.md). The preview account reads
metadata of the same types, and no data (no secret payload, no Redis AUTH string).

Within one project, deploy accounts of different environments share the custom role, so
staging's could change production's resources: give production its own project (Google's
advice). docs/gcp-projects.md has the table of who reaches what, and the limits (permission
names, soft-deleted ids, custom `sub` templates) that cannot be checked offline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.naming import fit

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
PREVIEW_KIND = "preview"
# google.subject may hold at most 127 bytes; the condition at most 4096 characters.
SUBJECT_MAX = 127
CONDITION_MAX = 4096
ACCOUNT_ID_MAX = 30
ROLE_ID_MAX = 64
DISPLAY_NAME_MAX = 100  # service accounts and custom role titles
# Leaves room for at least "a-<hash>-" before "<kind>-run" in an account id.
KIND_MAX = ACCOUNT_ID_MAX - len("a-1234567--run")
POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.repository_owner_id": "assertion.repository_owner_id",
    "attribute.environment": "assertion.environment",
}

# What `pulumi up` of a gcp stack creates, changes and deletes (and the operations it waits
# on). Reads (get/list/getIamPolicy) are what a preview may do too.
DEPLOY_PERMISSIONS = (
    # Cloud Run v2: services, their invoker policy (public, or invoker IAM disabled).
    "run.services.create",
    "run.services.delete",
    "run.services.get",
    "run.services.list",
    "run.services.update",
    "run.services.getIamPolicy",
    "run.services.setIamPolicy",
    "run.revisions.get",
    "run.revisions.list",
    "run.operations.get",
    # The migration job (infra/gcp/migration.py): `up` runs it and waits for its execution.
    "run.jobs.create",
    "run.jobs.delete",
    "run.jobs.get",
    "run.jobs.list",
    "run.jobs.update",
    "run.jobs.run",
    "run.executions.get",
    "run.executions.list",
    # Cloud SQL: the instance, its database and user.
    "cloudsql.instances.create",
    "cloudsql.instances.delete",
    "cloudsql.instances.get",
    "cloudsql.instances.list",
    "cloudsql.instances.update",
    "cloudsql.databases.create",
    "cloudsql.databases.delete",
    "cloudsql.databases.get",
    "cloudsql.databases.list",
    "cloudsql.databases.update",
    "cloudsql.users.create",
    "cloudsql.users.delete",
    "cloudsql.users.get",
    "cloudsql.users.list",
    "cloudsql.users.update",
    # Memorystore for Redis; the AUTH string goes into the app's secret.
    "redis.instances.create",
    "redis.instances.delete",
    "redis.instances.get",
    "redis.instances.list",
    "redis.instances.update",
    "redis.instances.getAuthString",
    "redis.operations.get",
    # Secret Manager: the app's secrets, their versions and per-secret accessors.
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.secrets.get",
    "secretmanager.secrets.list",
    "secretmanager.secrets.update",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.setIamPolicy",
    "secretmanager.versions.add",
    "secretmanager.versions.access",
    "secretmanager.versions.destroy",
    "secretmanager.versions.disable",
    "secretmanager.versions.enable",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
    # Monitoring: channels, uptime checks, alert policies.
    "monitoring.alertPolicies.create",
    "monitoring.alertPolicies.delete",
    "monitoring.alertPolicies.get",
    "monitoring.alertPolicies.list",
    "monitoring.alertPolicies.update",
    "monitoring.notificationChannels.create",
    "monitoring.notificationChannels.delete",
    "monitoring.notificationChannels.get",
    "monitoring.notificationChannels.list",
    "monitoring.notificationChannels.update",
    "monitoring.uptimeCheckConfigs.create",
    "monitoring.uptimeCheckConfigs.delete",
    "monitoring.uptimeCheckConfigs.get",
    "monitoring.uptimeCheckConfigs.list",
    "monitoring.uptimeCheckConfigs.update",
    # The VPC: network, subnet (used by Direct VPC egress), firewall, the PSA range+peering.
    "compute.networks.create",
    "compute.networks.delete",
    "compute.networks.get",
    "compute.networks.list",
    "compute.networks.update",
    "compute.networks.updatePolicy",
    "compute.networks.addPeering",
    "compute.networks.removePeering",
    "compute.networks.updatePeering",
    "compute.subnetworks.create",
    "compute.subnetworks.delete",
    "compute.subnetworks.get",
    "compute.subnetworks.list",
    "compute.subnetworks.update",
    "compute.subnetworks.use",
    "compute.firewalls.create",
    "compute.firewalls.delete",
    "compute.firewalls.get",
    "compute.firewalls.list",
    "compute.firewalls.update",
    "compute.globalAddresses.create",
    "compute.globalAddresses.delete",
    "compute.globalAddresses.get",
    "compute.globalAddresses.list",
    "compute.globalAddresses.use",
    "compute.globalOperations.get",
    "compute.regionOperations.get",
    # The load balancer app.domain puts in front of Cloud Run, and its Cloud Armor policy:
    # only the global (EXTERNAL_MANAGED) kinds, and the serverless NEG's regional one.
    "compute.globalAddresses.setLabels",
    "compute.globalForwardingRules.create",
    "compute.globalForwardingRules.delete",
    "compute.globalForwardingRules.get",
    "compute.globalForwardingRules.list",
    "compute.globalForwardingRules.setLabels",
    "compute.globalForwardingRules.setTarget",
    "compute.globalForwardingRules.update",
    "compute.regionNetworkEndpointGroups.create",
    "compute.regionNetworkEndpointGroups.delete",
    "compute.regionNetworkEndpointGroups.get",
    "compute.regionNetworkEndpointGroups.list",
    "compute.regionNetworkEndpointGroups.use",
    "compute.backendServices.create",
    "compute.backendServices.delete",
    "compute.backendServices.get",
    "compute.backendServices.list",
    "compute.backendServices.update",
    "compute.backendServices.use",
    "compute.backendServices.setSecurityPolicy",
    "compute.urlMaps.create",
    "compute.urlMaps.delete",
    "compute.urlMaps.get",
    "compute.urlMaps.list",
    "compute.urlMaps.update",
    "compute.urlMaps.use",
    "compute.sslCertificates.create",
    "compute.sslCertificates.delete",
    "compute.sslCertificates.get",
    "compute.sslCertificates.list",
    "compute.sslPolicies.create",
    "compute.sslPolicies.delete",
    "compute.sslPolicies.get",
    "compute.sslPolicies.list",
    "compute.sslPolicies.update",
    "compute.sslPolicies.use",
    "compute.targetHttpsProxies.create",
    "compute.targetHttpsProxies.delete",
    "compute.targetHttpsProxies.get",
    "compute.targetHttpsProxies.list",
    "compute.targetHttpsProxies.setSslCertificates",
    "compute.targetHttpsProxies.setSslPolicy",
    "compute.targetHttpsProxies.setUrlMap",
    "compute.targetHttpsProxies.update",
    "compute.targetHttpsProxies.use",
    "compute.targetHttpProxies.create",
    "compute.targetHttpProxies.delete",
    "compute.targetHttpProxies.get",
    "compute.targetHttpProxies.list",
    "compute.targetHttpProxies.setUrlMap",
    "compute.targetHttpProxies.update",
    "compute.targetHttpProxies.use",
    "compute.securityPolicies.create",
    "compute.securityPolicies.delete",
    "compute.securityPolicies.get",
    "compute.securityPolicies.list",
    "compute.securityPolicies.setLabels",
    "compute.securityPolicies.update",
    "compute.securityPolicies.use",
    # Cloud DNS: the A record in the zone the team owns; the zones themselves only read.
    "dns.managedZones.get",
    "dns.managedZones.list",
    "dns.resourceRecordSets.create",
    "dns.resourceRecordSets.delete",
    "dns.resourceRecordSets.get",
    "dns.resourceRecordSets.list",
    "dns.resourceRecordSets.update",
    "dns.changes.create",
    "dns.changes.get",
    "dns.changes.list",
    "servicenetworking.services.addPeering",
    "servicenetworking.services.get",
    "servicenetworking.operations.get",
    # Artifact Registry: the repositories the stacks create, and pushing the image to them
    # (what `artifactregistry.writer` holds; a pr-<n> stack's new repository has no grant).
    "artifactregistry.repositories.create",
    "artifactregistry.repositories.delete",
    "artifactregistry.repositories.get",
    "artifactregistry.repositories.list",
    "artifactregistry.repositories.update",
    "artifactregistry.repositories.getIamPolicy",
    "artifactregistry.repositories.uploadArtifacts",
    "artifactregistry.repositories.downloadArtifacts",
    "artifactregistry.dockerimages.get",
    "artifactregistry.dockerimages.list",
    "artifactregistry.packages.get",
    "artifactregistry.packages.list",
    "artifactregistry.tags.create",
    "artifactregistry.tags.get",
    "artifactregistry.tags.list",
    "artifactregistry.tags.update",
    "artifactregistry.versions.get",
    "artifactregistry.versions.list",
    # APIs: GcpApis enables (a no-op when on) and never disables them.
    "serviceusage.services.enable",
    "serviceusage.services.get",
    "serviceusage.services.list",
    # What this component manages, read only, so a stack that contains it can still refresh.
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.list",
    "iam.serviceAccounts.getIamPolicy",
    "iam.roles.get",
    "iam.roles.list",
    "iam.workloadIdentityPools.get",
    "iam.workloadIdentityPoolProviders.get",
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
)
# A preview's reads: metadata only (no secret payload, no Redis AUTH string).
DATA_READS = ("secretmanager.versions.access", "redis.instances.getAuthString")
PREVIEW_PERMISSIONS = tuple(
    p
    for p in DEPLOY_PERMISSIONS
    if p.rsplit(".", 1)[1] in ("get", "list", "getIamPolicy") and p not in DATA_READS
)
# What would let a deploy account grant itself (or anyone) more, or leave its environment.
ESCALATING_PERMISSIONS = (
    "resourcemanager.projects.setIamPolicy",
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccountKeys.create",
    "iam.roles.create",
    "iam.roles.update",
    "iam.workloadIdentityPools.update",
    "iam.workloadIdentityPoolProviders.create",
    "iam.workloadIdentityPoolProviders.update",
    "artifactregistry.repositories.setIamPolicy",
    "serviceusage.services.disable",
)

_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_ENVIRONMENT = re.compile(r"[^'\"\\*,:;`/]+")
_OWNER_ID = re.compile(r"[1-9][0-9]*")
_WIF_ID = re.compile(r"(?!gcp-)[a-z0-9][-a-z0-9]{2,30}[a-z0-9]")


@dataclass(frozen=True)
class GcpGitHubRole:
    kind: str  # resource name suffix: deploy, preview, ephemeral ("preview" reads only)
    environment: str  # the GitHub environment whose jobs may impersonate it

    @property
    def read_only(self) -> bool:
        return self.kind == PREVIEW_KIND


@dataclass(frozen=True)
class GcpDeployIdentityArgs:
    project: pulumi.Input[str]
    repository: str  # owner/repo, exactly as GitHub spells it (the sub claim is case-sensitive)
    repository_owner_id: str  # the owner's numeric id: survives a rename, a name does not
    roles: Sequence[GcpGitHubRole]
    # Pool ids stay reserved for 30 days after deletion: None derives one from the name.
    pool_id: str | None = None
    provider_id: str = "github"
    # A self-managed state backend (gs://) and the secrets provider's key (gcpkms://):
    # deploy accounts read and write the state, preview accounts only read it.
    state_bucket: str | None = None
    secrets_key_id: pulumi.Input[str] | None = None


def subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def attribute_condition(
    repository_owner_id: str, repository: str, environments: Sequence[str]
) -> str:
    """CKV_GCP_118/125: the owner (by id) and the exact subject of each trusted environment."""
    subjects = " || ".join(f"assertion.sub == '{subject(repository, e)}'" for e in environments)
    return f"assertion.repository_owner_id == '{repository_owner_id}' && ({subjects})"


def identity_problems(args: GcpDeployIdentityArgs) -> list[str]:
    problems = []
    if not _REPOSITORY.fullmatch(args.repository):
        problems.append(f"repository: '{args.repository}' must be owner/repo, without wildcards")
    if not _OWNER_ID.fullmatch(args.repository_owner_id):
        problems.append(
            f"repository_owner_id: '{args.repository_owner_id}' must be the owner's numeric "
            "GitHub id (gh api users/OWNER --jq .id)"
        )
    if not args.roles:
        problems.append("roles: at least one is required")
    for field_name, values in (
        ("kind", [r.kind for r in args.roles]),
        ("environment", [r.environment for r in args.roles]),
    ):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            problems.append(f"roles: {field_name} listed more than once: {', '.join(repeated)}")
    for role in args.roles:
        if not re.fullmatch(rf"[a-z][a-z0-9-]{{0,{KIND_MAX - 2}}}[a-z0-9]", role.kind):
            problems.append(
                f"roles: kind '{role.kind}' must be 2 to {KIND_MAX} lowercase letters, digits "
                "and hyphens, starting with a letter"
            )
        if not _ENVIRONMENT.fullmatch(role.environment):
            problems.append(
                f"roles: environment '{role.environment}' may not contain quotes, '\\', '*' "
                "or , : ; ` /"
            )
        elif len(subject(args.repository, role.environment).encode()) > SUBJECT_MAX:
            problems.append(
                f"roles: subject '{subject(args.repository, role.environment)}' is longer "
                f"than the {SUBJECT_MAX} bytes google.subject may hold"
            )
    condition = attribute_condition(
        args.repository_owner_id, args.repository, [r.environment for r in args.roles]
    )
    if len(condition) > CONDITION_MAX:
        problems.append(
            f"roles: the attribute condition would be {len(condition)} characters, more than "
            f"the {CONDITION_MAX} allowed: fewer environments per identity"
        )
    for key, value in (("pool_id", args.pool_id), ("provider_id", args.provider_id)):
        if value is not None and not _WIF_ID.fullmatch(value):
            problems.append(
                f"{key}: '{value}' must be 4 to 32 lowercase letters, digits and hyphens, "
                "not starting with 'gcp-' nor starting or ending with '-'"
            )
    return problems


def account_id(name: str, suffix: str) -> str:
    """`name-suffix`, or a shortened name (start + hash, so stacks never collide) that keeps
    the suffix readable in the console, within the 30 characters an account id may have."""
    full = f"{name}-{suffix}"
    if len(full) <= ACCOUNT_ID_MAX:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:7]
    room = ACCOUNT_ID_MAX - len(suffix) - len(digest) - 2
    return f"{name[:room].rstrip('-')}-{digest}-{suffix}"


def deploy_account_email(identity_name: str, kind: str, project: str) -> str:
    """The service account GitHub's `kind` jobs (deploy, preview...) impersonate: fixed by the
    names, so another stack can grant it something before it exists."""
    return f"{account_id(identity_name, kind)}@{project}.iam.gserviceaccount.com"


def runtime_account_email(identity_name: str, kind: str, project: str) -> str:
    """The runtime account of `kind` in the identity named `identity_name`: fixed by the names,
    so a stack without the identity (pr-<n>) can run as the one staging creates for it."""
    return f"{account_id(identity_name, f'{kind}-run')}@{project}.iam.gserviceaccount.com"


def role_id(name: str, kind: str) -> str:
    """The custom role's id (letters, digits, '_' and '.', at most 64): shortened like
    `account_id` when needed, so two long stack names never share one."""
    full = re.sub(r"[^A-Za-z0-9]", "_", f"{name}_{kind}")
    if len(full) <= ROLE_ID_MAX:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:7]
    room = ROLE_ID_MAX - len(kind) - len(digest) - 2
    return f"{re.sub(r'[^A-Za-z0-9]', '_', name[:room])}_{digest}_{kind}"


def pool_id(name: str) -> str:
    """A pool id from the component name; "gcp-" starts ids Google reserves for itself."""
    return fit(POOL, f"gh-{name}" if name.startswith("gcp-") else name)


class GcpDeployIdentity(pulumi.ComponentResource):
    provider_name: pulumi.Output[str]
    pool_name: pulumi.Output[str]
    service_accounts: dict[str, pulumi.Output[str]]
    members: dict[str, pulumi.Output[str]]
    runtime_service_accounts: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: GcpDeployIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = identity_problems(args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:GcpDeployIdentity", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            project=args.project,
            workload_identity_pool_id=args.pool_id or pool_id(name),
            display_name=f"GitHub: {args.repository}"[:32],
            description=f"GitHub Actions of {args.repository}",
            opts=child,
        )
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-github",
            project=args.project,
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=args.provider_id,
            display_name="GitHub Actions",
            oidc={"issuer_uri": GITHUB_ISSUER},
            attribute_mapping=ATTRIBUTE_MAPPING,
            attribute_condition=attribute_condition(
                args.repository_owner_id,
                args.repository,
                [r.environment for r in args.roles],
            ),
            opts=child,
        )
        custom_roles = {
            read_only: gcp.projects.IAMCustomRole(
                f"{name}-{'preview' if read_only else 'deploy'}-role",
                project=args.project,
                role_id=role_id(name, "preview" if read_only else "deploy"),
                title=f"{name} GitHub {'previews' if read_only else 'deploys'}"[:DISPLAY_NAME_MAX],
                description=(
                    "Reads the metadata of the gcp stacks' resources, and no data"
                    if read_only
                    else "Manages the gcp stacks' resources; reads IAM, grants none"
                ),
                permissions=sorted(PREVIEW_PERMISSIONS if read_only else DEPLOY_PERMISSIONS),
                stage="GA",
                opts=child,
            )
            for read_only in sorted({r.read_only for r in args.roles})
        }
        self.service_accounts = {}
        self.members = {}
        self.runtime_service_accounts = {}
        for role in args.roles:
            label = f"{name}-{role.kind}"
            account = gcp.serviceaccount.Account(
                label,
                project=args.project,
                account_id=account_id(name, role.kind),
                display_name=(
                    f"GitHub {'previews' if role.read_only else 'deploys'} ({role.environment})"
                )[:DISPLAY_NAME_MAX],
                description=f"{args.repository}, GitHub environment {role.environment}",
                opts=child,
            )
            # Only this environment's jobs: the principal is the exact subject.
            gcp.serviceaccount.IAMMember(
                f"{label}-github",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=pulumi.Output.concat(
                    "principal://iam.googleapis.com/",
                    pool.name,
                    "/subject/",
                    subject(args.repository, role.environment),
                ),
                opts=child,
            )
            gcp.projects.IAMMember(
                f"{label}-role",
                project=args.project,
                role=custom_roles[role.read_only].name,
                member=account.member,
                opts=child,
            )
            self._backend_access(label, args, account.member, role.read_only)
            if not role.read_only:
                self.runtime_service_accounts[role.kind] = self._runtime_account(
                    label, args, role, account.member
                )
            self.service_accounts[role.kind] = account.email
            self.members[role.kind] = account.member
        self.provider_name = provider.name
        self.pool_name = pool.name
        self.register_outputs(
            {
                "providerName": self.provider_name,
                "serviceAccounts": self.service_accounts,
                "runtimeServiceAccounts": self.runtime_service_accounts,
            }
        )

    def _runtime_account(
        self,
        label: str,
        args: GcpDeployIdentityArgs,
        role: GcpGitHubRole,
        deployer: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        """The account Cloud Run runs as: no project role (secrets are granted per secret);
        the deploy account may attach it to a service (CKV_GCP_41/49: on the account only)."""
        runtime = gcp.serviceaccount.Account(
            f"{label}-run",
            project=args.project,
            account_id=account_id(self._name, f"{role.kind}-run"),
            display_name=f"Cloud Run service ({role.environment})"[:DISPLAY_NAME_MAX],
            description=f"What the {role.environment} services of {args.repository} run as",
            opts=pulumi.ResourceOptions(parent=self),
        )
        gcp.serviceaccount.IAMMember(
            f"{label}-run-user",
            service_account_id=runtime.name,
            role="roles/iam.serviceAccountUser",
            member=deployer,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return runtime.email

    def _backend_access(
        self,
        label: str,
        args: GcpDeployIdentityArgs,
        member: pulumi.Output[str],
        read_only: bool,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        if args.state_bucket is not None:
            gcp.storage.BucketIAMMember(
                f"{label}-state",
                bucket=args.state_bucket,
                # A preview on a self-managed backend takes no lock: reading is enough.
                role="roles/storage.objectViewer" if read_only else "roles/storage.objectUser",
                member=member,
                opts=child,
            )
        if args.secrets_key_id is not None:
            gcp.kms.CryptoKeyIAMMember(
                f"{label}-secrets-key",
                crypto_key_id=args.secrets_key_id,
                role=(
                    "roles/cloudkms.cryptoKeyDecrypter"
                    if read_only
                    else "roles/cloudkms.cryptoKeyEncrypterDecrypter"
                ),
                member=member,
                opts=child,
            )
