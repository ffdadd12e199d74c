"""examples/sandboxpool.yaml is a valid SandboxPool plus SandboxClaim whose rendered
objects are valid Kubernetes objects."""

from __future__ import annotations

import kubernetes_validate
import yaml
from berth_operator.api.generate import REPO
from berth_operator.api.sandboxclaim import parse_spec as parse_claim
from berth_operator.api.sandboxpool import parse_spec as parse_pool
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import Subject
from berth_operator.render.sandbox.netpol import network_policy
from berth_operator.render.sandbox.pod import warm_pod
from berth_operator.render.sandbox.proxy import proxy_config_map


def test_example_pool_and_claim() -> None:
    docs = list(yaml.safe_load_all((REPO / "examples" / "sandboxpool.yaml").read_text()))
    pool_doc, claim_doc = docs
    assert pool_doc["kind"] == "SandboxPool" and claim_doc["kind"] == "SandboxClaim"
    pool = parse_pool(pool_doc["spec"])
    claim = parse_claim(claim_doc["spec"])
    assert claim.pool_ref.name == pool_doc["metadata"]["name"]
    assert claim_doc["metadata"]["labels"]["berth.dev/thread-id"] == claim.thread_id
    agent = yaml.safe_load((REPO / "examples" / "agentdeployment.yaml").read_text())
    assert pool.network_policy.allowed_deployments == [agent["metadata"]["name"]]
    subject = Subject(name="python", namespace="default", uid="u", kind="SandboxPool")
    netpol = network_policy(subject, pool)
    assert netpol is not None
    for obj in (
        warm_pod(subject, pool, "python-a", images=ImageDefaults()),
        proxy_config_map(subject, pool),
        netpol,
    ):
        kubernetes_validate.validate(obj, "1.36", strict=True)
