"""JSON state files: ``_io.read_json``'s limits, one atomic writer, and the autotune cache and the
CLI tools on crafted files (deep nesting, huge numbers, wrong types): one warning, never a
traceback, and the tools that write the file repair it."""

from __future__ import annotations

import json
import math
import os
import stat
import time

import numpy as np
import pytest

import jaxconv
from jaxconv import cli
from jaxconv._io import JSONFileError, read_json, write_json_atomic
from jaxconv.convolution import cache, cost_model
from jaxconv.convolution._registry import ConvConfig

X, K = (1, 8, 8, 2), (3, 3, 2, 2)

# Contents no JSON state file may hold: each with the reason read_json gives.
CRAFTED = {
    "deep-brackets": ("[" * 100_000, "nested more than 32 levels deep"),
    "deep-objects": ('{"a":' * 5_000 + "1" + "}" * 5_000, "nested more than 32 levels deep"),
    "400-digit-int": ('{"a": ' + "7" * 400 + "}", r"the integer 7{24}\.\.\. is out of range"),
    "int-beyond-int64": ('{"a": 9223372036854775808}', "out of range"),
    "1e999": ('{"a": 1e999}', "the number 1e999 overflows a float"),
    "NaN": ('{"a": NaN}', "NaN is not a finite number"),
    "-Infinity": ("[-Infinity]", "-Infinity is not a finite number"),
    "not-utf8": (b'{"a": "\xff"}', "not UTF-8 text"),
    "truncated": ('{"a": [1, 2', "not valid JSON"),
    "empty": ("", "not valid JSON"),
}


def _write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ------------------------------------------------------------------------------ read_json


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_read_json_refuses_crafted_content_fast_naming_the_file(tmp_path, name):
    content, reason = CRAFTED[name]
    path = _write(tmp_path / "state.json", content)
    t0 = time.perf_counter()
    with pytest.raises(JSONFileError, match=reason) as e:
        read_json(path)
    assert time.perf_counter() - t0 < 1.0
    assert str(e.value).startswith(f"{path}: ") and e.value.path == path and not e.value.missing
    assert isinstance(e.value, ValueError)  # the CLI reports it as one line


def test_read_json_accepts_plain_json_up_to_the_limits(tmp_path):
    data = {"s": "[[[[{{{{ \" ]]", "n": [-(2**63 - 1), 2**63 - 1, 1.5e308, -0.0, True, None]}
    path = _write(tmp_path / "ok.json", json.dumps(data))
    assert read_json(path) == data  # brackets inside strings do not count as nesting
    at_limit = "[" * 32 + "]" * 32
    assert read_json(_write(tmp_path / "d.json", at_limit)) == json.loads(at_limit)
    with pytest.raises(JSONFileError, match="nested more than 3 levels deep"):
        read_json(tmp_path / "d.json", max_depth=3)
    assert read_json(_write(tmp_path / "three.json", "[[[1]]]"), max_depth=3) == [[[1]]]


def test_read_json_file_errors(tmp_path):
    with pytest.raises(JSONFileError, match="no such file") as e:
        read_json(tmp_path / "missing.json")
    assert e.value.missing
    with pytest.raises(JSONFileError, match="not a regular file"):
        read_json(tmp_path)
    os.mkfifo(tmp_path / "fifo")  # reading would block forever
    with pytest.raises(JSONFileError, match="not a regular file"):
        read_json(tmp_path / "fifo")
    big = _write(tmp_path / "big.json", "[" + "0," * 100 + "0]")
    with pytest.raises(JSONFileError, match=r"203 bytes, more than the 100 accepted"):
        read_json(big, max_bytes=100)
    if os.geteuid() != 0:  # root reads anything
        unreadable = _write(tmp_path / "locked.json", "{}")
        unreadable.chmod(0)
        with pytest.raises(JSONFileError, match="cannot read it"):
            read_json(unreadable)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [(dict(max_depth=0), ValueError, "read_json: max_depth must be an int >= 1, got 0"),
     (dict(max_bytes=-1), ValueError, "read_json: max_bytes must be an int >= 0, got -1"),
     (dict(max_depth=2.0), TypeError, "read_json: max_depth must be an int >= 1, got 2.0"),
     (dict(max_bytes=True), TypeError, "read_json: max_bytes must be an int >= 0, got True")],
)
def test_read_json_argument_errors(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        read_json(_write(tmp_path / "a.json", "{}"), **kwargs)


def test_parse_json_applies_the_same_rules_to_text_naming_the_source():
    from jaxconv._io import parse_json

    assert parse_json(b'{"a": [1, 2.5]}', "bytes") == parse_json('{"a": [1, 2.5]}', "text") == {"a": [1, 2.5]}
    for name in ("deep-brackets", "400-digit-int", "NaN", "not-utf8"):
        content, reason = CRAFTED[name]
        with pytest.raises(JSONFileError, match=f"^the field x: {reason}"):
            parse_json(content, "the field x")
    with pytest.raises(TypeError, match="parse_json: data must be bytes or str, got int"):
        parse_json(3, "x")
    with pytest.raises(ValueError, match="parse_json: max_depth must be an int >= 1, got 0"):
        parse_json("{}", "x", max_depth=0)


def test_write_json_atomic_round_trips_and_keeps_permissions(tmp_path):
    path = tmp_path / "s.json"
    data = {"b": [1, 2.5], "a": {"x": None}}
    assert write_json_atomic(path, data) == path
    assert read_json(path) == data
    assert path.read_text() == json.dumps(data, indent=1, sort_keys=True) + "\n"
    path.chmod(0o640)
    write_json_atomic(path, {"c": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and read_json(path) == {"c": 1}
    with pytest.raises(ValueError, match=r"write_json_atomic: cannot write .*s\.json.*nan"):
        write_json_atomic(path, {"c": math.nan})  # read_json would refuse the file
    assert read_json(path) == {"c": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_one_atomic_json_writer():
    assert not hasattr(cache, "write_json_atomic")


# ------------------------------------------------------------------------------ the autotune cache


def _valid_cache(**entry_changes):
    key = cache.make_key((1, 8, 8, 2), K, "float32", ConvConfig(), "cpu", "kind")
    entry = {"winner": "direct", "timings_ms": {"direct": 1.25}, **entry_changes}
    return {"schema": cache.SCHEMA, "version": cache.VERSION, "entries": {cache.key_str(key): entry}}


# Crafted autotune caches: unparseable ones, and valid JSON with wrong types in every place.
CRAFTED_CACHES = {
    **{name: content for name, (content, _) in CRAFTED.items()},
    "huge-int-timing": json.dumps(_valid_cache()).replace("1.25", "9" * 400),
    "huge-int-version": json.dumps(_valid_cache()).replace('"version": 1', '"version": ' + "1" * 400),
    "string-timing": json.dumps(_valid_cache(timings_ms={"direct": "fast"})),
    "list-timings": json.dumps(_valid_cache(timings_ms=[1.0])),
    "numeric-winner": json.dumps(_valid_cache(winner=5)),
    "entry-is-a-list": json.dumps({**_valid_cache(), "entries": {"k": [1]}}),
    "entries-is-a-string": json.dumps({**_valid_cache(), "entries": "x"}),
    "version-is-a-list": json.dumps({**_valid_cache(), "version": [1]}),
    "top-level-number": "1",
}


@pytest.mark.parametrize("name", sorted(CRAFTED_CACHES))
def test_crafted_autotune_cache_never_breaks_a_convolution(cache_dir, name):
    cache_dir.mkdir()
    path = _write(cache_dir / "autotune.json", CRAFTED_CACHES[name])
    with pytest.warns(cache.AutotuneCacheWarning) as record:
        sel = jaxconv.select_algorithm(X, K)
        y = jaxconv.conv2d(np.ones(X, np.float32), np.ones(K, np.float32))
    assert len([w for w in record if w.category is cache.AutotuneCacheWarning]) == 1
    assert "autotune.json" in str(record[0].message)
    assert sel.source == "cost-model"
    np.testing.assert_array_equal(y, np.full((1, 6, 6, 2), 18.0))  # 3 * 3 * 2 ones
    r = jaxconv.autotune(X, K, repeats=1, algorithms=["direct"])  # rewrites a valid file
    assert read_json(path)["schema"] == cache.SCHEMA
    assert jaxconv.select_algorithm(X, K).algorithm == r.winner


# ------------------------------------------------------------------------------ the CLI tools


def _cli(argv, capsys):
    rc = cli.main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return rc, out.out, out.err


def _warnings(err, prog):
    return [line for line in err.splitlines() if line.startswith(f"{prog}: warning: ")]


@pytest.mark.filterwarnings("always::UserWarning")
@pytest.mark.parametrize("name", ["deep-brackets", "400-digit-int", "huge-int-timing"])
def test_autotune_cli_repairs_a_crafted_cache(cache_dir, capsys, name):
    cache_dir.mkdir()
    path = _write(cache_dir / "autotune.json", CRAFTED_CACHES[name])
    rc, out, err = _cli(["autotune", "1x8x8x2", "3x3x2x2", "--repeats", "1"], capsys)
    assert rc == 0 and "winner: " in out and err == "", err  # replaced without a word
    assert read_json(path)["schema"] == cache.SCHEMA
    assert jaxconv.select_algorithm(X, K).source == "autotune"


@pytest.mark.filterwarnings("always::UserWarning")
@pytest.mark.parametrize("name", ["deep-brackets", "400-digit-int"])
def test_show_cli_with_crafted_state_files(cache_dir, tmp_path, capsys, name):
    from PIL import Image

    cache_dir.mkdir()
    content = CRAFTED[name][0]
    _write(cache_dir / "autotune.json", content)
    _write(cache_dir / "calibration.json", content.replace("{\"a\"", "{\"scales\""))
    Image.fromarray(np.full((12, 10, 3), 100, np.uint8)).save(tmp_path / "in.png")
    rc, out, err = _cli(["show", str(tmp_path / "in.png"), "--layers", "conv3x3:2",
                         "--out", str(tmp_path / "o.png")], capsys)
    assert rc == 0 and out.startswith("wrote"), err
    assert any("autotune.json" in w for w in _warnings(err, "jaxconv show")), err


@pytest.mark.filterwarnings("always::UserWarning")
@pytest.mark.parametrize("name", ["deep-brackets", "400-digit-int"])
def test_calibrate_cli_repairs_a_crafted_calibration(cache_dir, capsys, monkeypatch, name):
    from jaxconv.convolution import calibration

    monkeypatch.setattr(calibration, "problems", lambda: [((1, 8, 8, 2), K, ConvConfig())])
    cache_dir.mkdir()
    path = _write(cache_dir / "calibration.json", CRAFTED[name][0])
    rc, out, err = _cli(["calibrate", "--repeats", "1", "--quiet"], capsys)
    assert rc == 0 and "calibration.json" in out, err
    assert read_json(path)["schema"] == cost_model.CALIBRATION_SCHEMA


@pytest.mark.parametrize(
    ("argv", "match"),
    [(["--repeats", "0"], "--repeats must be >= 1, got 0"),
     (["--budget", "0"], "--budget must be a finite number of seconds > 0, got 0.0"),
     (["--budget", "nan"], "--budget must be a finite number of seconds > 0, got nan")],
)
def test_calibrate_cli_bad_flags_are_usage_errors(cache_dir, capsys, argv, match):
    rc, _, err = _cli(["calibrate", *argv], capsys)
    assert rc == 2 and err == f"jaxconv calibrate: {match}\n"


# ------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_])
def test_checkpoint_with_non_float_parameters_is_refused_on_load(tmp_path, dtype):
    import jax
    from test_reliability import _checkpoint_payload

    from jaxconv.models import CheckpointError, check_checkpoint, load_checkpoint

    payload, write = _checkpoint_payload(tmp_path)
    params = jax.tree.map(lambda a: np.asarray(a).astype(dtype), payload["params"])
    path = write("ints.msgpack", {**payload, "params": params})
    rule = (rf"ints\.msgpack: params/\w+/\w+ must be a floating-point array \(float16, float32 or "
            rf"float64\), got dtype {np.dtype(dtype).name}")
    for fn in (load_checkpoint, check_checkpoint):
        with pytest.raises(CheckpointError, match=rule):
            fn(path)


def test_checkpoint_float16_and_float64_parameters_load_and_run(tmp_path):
    import jax
    from test_reliability import _checkpoint_payload

    from jaxconv.models import load_checkpoint

    payload, write = _checkpoint_payload(tmp_path)
    x = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(1, 32, 32, 1)
    ref = np.asarray(load_checkpoint(tmp_path / "good.msgpack")[0](x))
    for dtype, tol in ((np.float64, 1e-6), (np.float16, 1e-2)):
        params = jax.tree.map(lambda a, dt=dtype: np.asarray(a).astype(dt), payload["params"])
        model, _ = load_checkpoint(write("f.msgpack", {**payload, "params": params}))
        np.testing.assert_allclose(np.asarray(model(x)), ref, rtol=tol, atol=tol)


def test_checkpoint_extra_is_read_with_the_json_limits(tmp_path):
    from test_reliability import _checkpoint_payload

    from jaxconv.models import CheckpointError, load_checkpoint

    payload, write = _checkpoint_payload(tmp_path)
    for name, extra, reason in [("deep", "[" * 100_000, "nested more than 32 levels deep"),
                                ("huge", '{"epoch": ' + "9" * 400 + "}", "is out of range")]:
        path = write(f"{name}.msgpack", {**payload, "extra": extra})
        with pytest.raises(CheckpointError, match=rf"{name}\.msgpack: extra must be a JSON object .*{reason}"):
            load_checkpoint(path)
