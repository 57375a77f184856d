"""Terraform's AWS provider against the broker (issue 14 item 9): it creates an identity
pool with tags, manages them with TagResource/UntagResource, and updates the pool with
UpdateIdentityPool WITHOUT IdentityPoolTags, so a change of any other argument must leave
the tags alone (contract section 7).

Opt-in, outside the test command: ``BROKER_TEST_TERRAFORM=1 .venv/bin/pytest
tests/test_terraform.py``. It is offline and reliable, but not quick: every terraform
command starts the 700 MB provider several times (3-4 s each), so the test takes about 35 s
on an idle 2-core machine and a minute under load. It needs terraform and the
hashicorp/aws provider in a local plugin mirror (TERRAFORM_PLUGIN_MIRROR, default
/opt/tf-plugins); nothing is downloaded. The provider learns the account id from STS
GetCallerIdentity, which moto_server answers (account 123456789012, so the broker runs
with that account id). On main before the fix the tag check after the change fails: {}.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clients import cognito_client
from support.processes import BrokerServer, broker_env, broker_on_own_redis
from support.upstream import MotoServer

PROVIDER_VERSION = "5.100.0"
MIRROR = Path(os.environ.get("TERRAFORM_PLUGIN_MIRROR", "/opt/tf-plugins"))
PROVIDER_DIR = MIRROR / "registry.terraform.io/hashicorp/aws" / PROVIDER_VERSION / "linux_amd64"
MOTO_ACCOUNT = "123456789012"  # moto_server's default account
TERRAFORM = shutil.which("terraform")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("BROKER_TEST_TERRAFORM") != "1",
        reason="opt-in (about 35 s): set BROKER_TEST_TERRAFORM=1",
    ),
    pytest.mark.skipif(
        TERRAFORM is None or not PROVIDER_DIR.is_dir(),
        reason=f"needs terraform and hashicorp/aws {PROVIDER_VERSION} in a local plugin mirror",
    ),
]

# The mirror doubles as the plugin cache, so init links the 700 MB provider, not copies it.
CLI_CONFIG = """
plugin_cache_dir = "{mirror}"
plugin_cache_may_break_dependency_lock_file = true
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/*/*"]
  }}
}}
"""

MAIN_TF = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "{version}" }}
  }}
}}

variable "allow_unauthenticated" {{
  type = bool
}}

provider "aws" {{
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {{
    cognitoidentity = "{broker}"
    sts             = "{sts}"
  }}
}}

resource "aws_cognito_identity_pool" "pool" {{
  identity_pool_name               = "terraform_pool"
  allow_unauthenticated_identities = var.allow_unauthenticated
  developer_provider_name          = "login.terraform"
  tags = {{
    team = "blue"
    env  = "test"
  }}
}}

output "pool_id" {{
  value = aws_cognito_identity_pool.pool.id
}}
"""


@pytest.fixture(scope="module")
def broker(broker_credentials: dict[str, str]) -> Iterator[BrokerServer]:
    with broker_on_own_redis(
        credentials=broker_credentials, workers=2, env={"BROKER_ACCOUNT_ID": MOTO_ACCOUNT}
    ) as (server, _):
        yield server


def terraform(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run(
        [TERRAFORM, f"-chdir={workdir}", *args, "-no-color"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_terraform_change_keeps_the_pool_tags(broker: BrokerServer, tmp_path: Path) -> None:
    workdir = tmp_path / "config"
    workdir.mkdir()
    (tmp_path / "cli.tfrc").write_text(CLI_CONFIG.format(mirror=MIRROR))
    with MotoServer() as sts:
        (workdir / "main.tf").write_text(
            MAIN_TF.format(version=PROVIDER_VERSION, broker=broker.url, sts=sts.url)
        )
        env = broker_env()
        env.update(
            {
                "HOME": str(tmp_path),
                "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc"),
                "TF_IN_AUTOMATION": "1",
                "CHECKPOINT_DISABLE": "1",
                "AWS_ACCESS_KEY_ID": broker.access_key_id,
                "AWS_SECRET_ACCESS_KEY": broker.secret_access_key,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        init = terraform(workdir, env, "init", "-input=false")
        assert init.returncode == 0, init.stdout + init.stderr

        def apply(allow: bool, *extra: str) -> subprocess.CompletedProcess[str]:
            var = f"allow_unauthenticated={str(allow).lower()}"
            return terraform(workdir, env, *extra, "-input=false", "-var", var)

        created = apply(False, "apply", "-auto-approve")
        assert created.returncode == 0, created.stdout + created.stderr
        output = terraform(workdir, env, "output", "-raw", "pool_id")
        assert output.returncode == 0, output.stdout + output.stderr
        pool_id = output.stdout.strip()
        client = cognito_client(broker)
        try:
            arn = f"arn:aws:cognito-identity:us-east-1:{MOTO_ACCOUNT}:identitypool/{pool_id}"
            tags: dict[str, Any] = client.list_tags_for_resource(ResourceArn=arn)["Tags"]
            assert tags == {"team": "blue", "env": "test"}

            changed = apply(True, "apply", "-auto-approve")  # UpdateIdentityPool, no tags
            assert changed.returncode == 0, changed.stdout + changed.stderr
            pool = client.describe_identity_pool(IdentityPoolId=pool_id)
            assert pool["AllowUnauthenticatedIdentities"] is True
            assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == tags
            # and Terraform sees no drift: the state and the pool agree
            plan = apply(True, "plan", "-detailed-exitcode")
            assert plan.returncode == 0, plan.stdout + plan.stderr
        finally:  # the broker, its Redis and the state go with the test: no destroy
            client.close()
