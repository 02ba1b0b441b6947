import pytest

from bakery.swarm.plan import differences, resolve


@pytest.mark.parametrize(
    ("want", "have", "diffs"),
    [
        ({"A": 1}, {"A": 1, "B": 2}, []),  # the engine adds fields: not a difference
        ({"A": {"B": [1, 2]}}, {"A": {"B": [1, 2]}}, []),
        ({"A": {"B": [1, 2]}}, {"A": {"B": [2, 1]}}, ["A.B"]),
        ({"A": {"Delay": 0}}, {"A": {}}, []),  # omitted zero == explicit zero
        ({"A": []}, {}, []),
        ({"A": "x"}, {"A": "y"}, ["A"]),
        ({"Env": ["A=1"]}, {"Env": ["A=1", "B=2"]}, ["Env"]),
        ({"M": [{"T": "/a", "RO": True}]}, {"M": [{"T": "/a"}]}, ["M"]),
    ],
)
def test_differences(want, have, diffs):
    assert differences(want, have) == diffs


def test_resolve_uses_ids_and_keeps_the_input():
    spec = {
        "TaskTemplate": {
            "Networks": [{"Target": "st_net"}],
            "ContainerSpec": {"Secrets": [{"SecretName": "st_tok_1"}], "Configs": []},
        }
    }
    out = resolve(spec, {"network:st_net": "n1", "secret:st_tok_1": "s1"})
    assert out["TaskTemplate"]["Networks"] == [{"Target": "n1"}]
    assert out["TaskTemplate"]["ContainerSpec"]["Secrets"] == [{"SecretName": "st_tok_1", "SecretID": "s1"}]
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "st_net"}]
