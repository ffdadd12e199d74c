"""examples/agentdeployment.yaml is valid and mirrors examples/agent/langgraph.json."""

from __future__ import annotations

import json

import yaml
from berth_operator.api.agentdeployment import parse_spec
from berth_operator.api.generate import REPO


def test_example_is_a_valid_agentdeployment_matching_the_example_agent() -> None:
    doc = yaml.safe_load((REPO / "examples" / "agentdeployment.yaml").read_text())
    assert doc["apiVersion"] == "berth.dev/v1alpha1" and doc["kind"] == "AgentDeployment"
    spec = parse_spec(doc["spec"])
    assert spec.graphs.inline is not None
    agent = json.loads((REPO / "examples" / "agent" / "langgraph.json").read_text())
    inline = spec.graphs.inline.model_dump(mode="json")
    assert set(inline["graphs"]) == set(agent["graphs"])
    for graph_id, path in agent["graphs"].items():
        # Same file and attribute; absolute inside the image (the config is mounted elsewhere).
        assert inline["graphs"][graph_id] == "/app/" + path.removeprefix("./")
    assert {k: v for k, v in inline.items() if k != "graphs"} == {
        k: v for k, v in agent.items() if k != "graphs"
    }
