"""langgraph.json as `berth` reads it: every bad input is refused with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from berth_cli.project import ProjectError, parse_crons, parse_langgraph_project

ROOT = Path("/project")
FILES = {"agent.py", "src", "src/tools.py", "pip.conf", ".env"}


def parse(data: Any, env_text: str | None = None) -> Any:
    return parse_langgraph_project(data, ROOT, lambda rel: rel in FILES, env_text)


def base(**extra: Any) -> dict[str, Any]:
    return {"graphs": {"agent": "./agent.py:graph"}, **extra}


def test_a_full_config_is_read() -> None:
    p = parse(
        base(
            dependencies=[".", "./src", "langchain-openai>=1.0", "httpx[http2]==0.28.1"],
            python_version="3.11",
            pip_config_file="./pip.conf",
            dockerfile_lines=["RUN echo hi"],
            env="./.env",
            crons=[{"name": "daily", "schedule": "0 8 * * *", "input": {"messages": []}}],
            sandbox={"pool": "python"},
        ),
        env_text="A=1\n",
    )
    assert p.graphs == {"agent": "./agent.py:graph"}
    assert p.local_deps == (".", "src")
    assert p.packages == ("langchain-openai>=1.0", "httpx[http2]==0.28.1")
    assert p.pip_config_file == "pip.conf"
    assert p.dockerfile_lines == ("RUN echo hi",)
    assert p.env_file == ".env" and p.env == {}
    assert p.sandbox_pool == "python"
    [cron] = p.crons
    assert cron.name == "daily"
    assert cron.spec == {"assistantId": "agent", "schedule": "0 8 * * *", "input": {"messages": []}}


def test_defaults() -> None:
    p = parse(base(env={"A": "x", "N": 3}))
    assert p.local_deps == (".",) and p.packages == ()
    assert p.python_version == "3.11"
    assert p.env == {"A": "x", "N": "3"} and p.env_file is None
    assert p.crons == () and p.sandbox_pool is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "langgraph.json must hold a JSON object"),
        ({}, "langgraph.json: graphs must be a non-empty object"),
        ({"graphs": {}}, "langgraph.json: graphs must be a non-empty object"),
        ({"graphs": {"a": 3}}, "graphs.a must be './file.py:object', got 3"),
        ({"graphs": {"a": "./agent.py"}}, "graphs.a must be './file.py:object'"),
        ({"graphs": {"a": "./agent.js:graph"}}, "graphs.a must be './file.py:object'"),
        ({"graphs": {"a": "./missing.py:graph"}}, "graphs.a: no file missing.py in /project"),
        ({"graphs": {"a": "../x.py:graph"}}, "graphs.a: '../x.py' is outside the project folder"),
        ({"graphs": {"a": "/abs/x.py:graph"}}, "graphs.a: '/abs/x.py' must be relative"),
        (base(dependencies="."), "dependencies must be a list of non-empty strings"),
        (base(dependencies=[""]), "dependencies must be a list of non-empty strings"),
        (base(dependencies=["./nope"]), "dependencies: no nope in /project"),
        (base(dependencies=["not a package!"]), "dependencies: 'not a package!' is neither"),
        (base(python_version="3.12"), "python_version: Berth's runtime image has Python 3.11"),
        (base(python_version=3.11), "python_version: Berth's runtime image has Python 3.11"),
        (base(pip_config_file=""), "pip_config_file must be a path"),
        (base(pip_config_file="./missing.conf"), "pip_config_file: no file missing.conf"),
        (base(dockerfile_lines="RUN x"), "dockerfile_lines must be a list of strings"),
        (base(dockerfile_lines=["FROM debian"]), "dockerfile_lines: 'FROM debian': FROM is not"),
        (base(env=3), "env must be an object or the path of a .env file"),
        (base(env="./.env.missing"), "env: no file .env.missing"),
        (base(env={"A": {"b": 1}}), "env.A must be a string"),
        (base(node_version="20"), "node_version: JavaScript graphs are not supported"),
        (base(base_image="x"), "base_image: the base is always Berth's runtime image"),
        (base(store=[]), "langgraph.json: 'store' must be an object"),
        (base(auth={"path": 3}), "langgraph.json: 'auth' must be an object with a 'path'"),
        (base(sandbox={"pool": "p", "bogus": 1}), "unknown key(s) in 'sandbox': bogus"),
        (base(crons={}), "crons must be a list of objects"),
    ],
)
def test_bad_input_names_the_field(data: Any, message: str) -> None:
    with pytest.raises(ProjectError) as err:
        parse(data)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("crons", "message"),
    [
        ([3], "crons[0] must be an object"),
        ([{"schedule": "@daily"}], "crons[0].name must be 1-52 lower-case letters"),
        ([{"name": "Bad_Name", "schedule": "@daily"}], "crons[0].name must be"),
        ([{"name": "a"}], "crons[0].schedule is required"),
        ([{"name": "a", "schedule": "every day"}], "crons[0]: schedule must be a standard"),
        (
            [{"name": "a", "schedule": "@daily", "timezone": "not a zone"}],
            "crons[0]: timeZone must be an IANA time zone name",
        ),
        ([{"name": "a", "schedule": "@daily", "colour": 1}], "crons[0]: unknown key 'colour'"),
        (
            [{"name": "a", "schedule": "@daily"}, {"name": "a", "schedule": "@hourly"}],
            "crons[1].name 'a' is used twice",
        ),
    ],
)
def test_bad_crons(crons: Any, message: str) -> None:
    with pytest.raises(ProjectError) as err:
        parse_crons(crons, "langgraph.json", ["agent"])
    assert message in str(err.value)


def test_a_cron_needs_its_assistant_when_there_are_several_graphs() -> None:
    with pytest.raises(ProjectError, match=r"crons\[0\].assistant_id is required"):
        parse_crons([{"name": "a", "schedule": "@daily"}], "langgraph.json", ["a", "b"])
    [cron] = parse_crons(
        [{"name": "a", "schedule": "@daily", "assistant_id": "b", "timezone": "UTC"}],
        "langgraph.json",
        ["a", "b"],
    )
    assert cron.spec == {"assistantId": "b", "schedule": "@daily", "timeZone": "UTC"}


def test_paths_are_normalized() -> None:
    files = {"src/agent.py"}
    p = parse_langgraph_project(
        {"graphs": {"a": "./src/../src/agent.py:graph"}, "dependencies": ["./src/.."]},
        ROOT,
        lambda rel: rel in files,
    )
    assert p.graphs == {"a": "./src/agent.py:graph"}
    assert p.local_deps == (".",)
