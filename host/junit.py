"""JUnit XML from a parity report, for CI (``python -m host.parity --junit FILE.xml``).

The file is the common JUnit shape that Jenkins (junit step), GitLab
(``artifacts:reports:junit``) and GitHub Actions test-report actions read::

    <testsuites name="host.parity" tests= failures= errors= skipped= time=>
      <testsuite name="host.parity.checks" ...>   one case per global check
        <properties> port, board, firmware, model SHA-256, exit status </properties>
        <testcase classname="host.parity.checks" name="model_sha256"/>   + frontend_sha256, protocol_version,
                 sample_rate, tensor_sizes, one per threshold, device_results, run
      </testsuite>
      <testsuite name="host.parity.clips" ...>    one case per clip (its file name), time = wall seconds
        <testcase classname="host.parity.clips" name="3_theo_0.wav" time="0.41">
          <failure message="what differed" type="parity">details</failure>   or
          <error message="stage: device error" type="Timeout"/>              or
          <skipped message="not run: ..."/>
          <system-out>labels, features, outputs, cost, wall</system-out>
        </testcase>
      </testsuite>
    </testsuites>

A clip's case fails on a difference no threshold tolerates: features more
than ``--max-feature-lsb`` apart, a top-1 that differs (unless
``--min-top1-agreement`` < 1), a model-only output that is not identical
(unless ``--min-exact`` < 1), an end-to-end output that differs although the
features were identical, or a label that is not the argmax of the device's
own output. Differences within tolerance are listed in its system-out; the
thresholds over all clips are the ``threshold ...`` cases. A row without a
device result is an ``<error>`` (an unreadable WAV too: stage ``input``); a
clip that was never run (the run was aborted) is ``<skipped>``. A run that
was refused, aborted or interrupted fails the ``run`` case, so the file
never looks green when host.parity's exit status is not 0.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from host import report as R

SUITE = "host.parity"
CHECK_NAMES = ("model_sha256", "frontend_sha256", "protocol_version", "sample_rate", "tensor_sizes")
#: Characters XML 1.0 cannot hold (device error text is echoed into the file).
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _BAD_XML.sub("?", str(text))


class _Suite:
    def __init__(self, parent: ET.Element, name: str, timestamp: str | None) -> None:
        self.el = ET.SubElement(parent, "testsuite", name=name)
        if timestamp:
            self.el.set("timestamp", timestamp)
        self.name = name
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        self.time = 0.0
        self.props: ET.Element | None = None

    def prop(self, name: str, value: Any) -> None:
        if value is None:
            return
        if self.props is None:
            self.props = ET.Element("properties")
            self.el.insert(0, self.props)
        ET.SubElement(self.props, "property", name=name, value=_clean(value))

    def case(self, name: str, *, time: float = 0.0, failure: str | None = None, details: str | None = None,
             error: str | None = None, error_type: str = "error", skipped: str | None = None,
             out: str | None = None) -> ET.Element:
        tc = ET.SubElement(self.el, "testcase", classname=self.name, name=_clean(name), time=f"{time:.6f}")
        self.counts["tests"] += 1
        self.time += time
        if error is not None:
            e = ET.SubElement(tc, "error", message=_clean(error), type=_clean(error_type))
            e.text = _clean(details or error)
            self.counts["errors"] += 1
        elif failure is not None:
            f = ET.SubElement(tc, "failure", message=_clean(failure), type="parity")
            f.text = _clean(details or failure)
            self.counts["failures"] += 1
        elif skipped is not None:
            ET.SubElement(tc, "skipped", message=_clean(skipped))
            self.counts["skipped"] += 1
        if out:
            ET.SubElement(tc, "system-out").text = _clean(out)
        return tc

    def close(self) -> None:
        for k, v in self.counts.items():
            self.el.set(k, str(v))
        self.el.set("time", f"{self.time:.6f}")


def _check_cases(suite: _Suite, report: dict[str, Any]) -> None:
    checks = report.get("checks") or {}
    front_end = report.get("mode") in ("end-to-end", "both")
    for name in CHECK_NAMES:
        c = checks.get(name)
        if c is None:
            suite.case(name, skipped="not checked: the device never answered INFO")
            continue
        text = f"{name}: device {c['device']}, reference {c['reference']}"
        if c["match"]:
            suite.case(name, out=text)
        elif name in ("frontend_sha256", "sample_rate") and not front_end:
            suite.case(name, skipped=f"{text}: differs, but model-only mode does not use the front end")
        else:
            suite.case(name, failure=f"{name} differs: device {c['device']}, reference {c['reference']}",
                       details=text + ("\nhost.parity refused to run the clips" if report.get("aborted") else ""))
    for t in R.threshold_checks(report):
        if t["passed"]:
            suite.case(f"threshold {t['name']}", out=t["message"])
        else:
            suite.case(f"threshold {t['name']}", failure=t["message"])
    dev_err = (report.get("error_kinds") or {}).get("device", 0)
    if dev_err:
        suite.case("device_results", failure=f"{dev_err} clip(s) without a device result (see their <error> cases)")
    else:
        suite.case("device_results", out="every clip that could be read has a device result")
    problems = []
    if report.get("interrupted"):
        problems.append("interrupted: partial report")
    if report.get("aborted"):
        problems.append(f"aborted: {report['aborted']}")
    if not report.get("checked"):
        problems.append("no clip was checked")
    status = report.get("exit_status")
    out = (f"exit status {status}; " + ("PARITY HOLDS" if report.get("parity") else "parity not shown")
           + f"; wall {float(report.get('wall_seconds') or 0.0):.1f} s (the clip cases carry the time)")
    if problems:
        suite.case("run", error="; ".join(problems), error_type="RunError", out=out)
    elif status not in (0, None) and not report.get("failures"):
        suite.case("run", error=f"exit status {status}", error_type="RunError", out=out)
    else:
        suite.case("run", out=out)


def _lsb(dev: list[int], ref: list[int]) -> tuple[int, int]:
    diffs = [abs(int(a) - int(b)) for a, b in zip(dev, ref)]
    return sum(d != 0 for d in diffs), max(diffs, default=0)


def clip_differences(row: dict[str, Any], thresholds: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(failures, notes) of one report row: what differed beyond tolerance, and within it."""
    fails: list[str] = []
    notes: list[str] = []
    e2e, mo = row.get("end_to_end"), row.get("model_only")
    top1_strict = thresholds.get("min_top1_agreement", 1.0) >= 1.0
    exact_strict = thresholds.get("min_exact", 1.0) >= 1.0
    if e2e:
        n, lsb = e2e["feature_mismatches"], e2e["feature_max_lsb"]
        if n:
            text = f"features: {n} of {e2e['feature_elements']} int8 elements differ, max {lsb} LSB"
            if lsb > thresholds.get("max_feature_lsb", 1):
                fails.append(f"{text} (> {thresholds.get('max_feature_lsb', 1)} allowed)")
            else:
                notes.append(text + " (within --max-feature-lsb)")
        if not e2e["top1_agree"]:
            (fails if top1_strict else notes).append(
                f"end-to-end top-1: device {e2e['device_label']}, reference {e2e['reference_label']}")
        if not e2e["output_exact"]:
            k, olsb = _lsb(e2e["device_output"], e2e["reference_output"])
            text = (f"end-to-end outputs: {k} of {len(e2e['device_output'])} differ, max {olsb} LSB "
                    f"(device {e2e['device_output']}, reference {e2e['reference_output']})")
            (fails if n == 0 else notes).append(text + ("" if n == 0 else " (the features differ)"))
        if e2e.get("label_inconsistent"):
            fails.append(f"end-to-end: device label {e2e['device_label']} is not the argmax of its own output")
    if mo:
        if not mo["output_exact"]:
            k, olsb = _lsb(mo["device_output"], mo["reference_output"])
            (fails if exact_strict else notes).append(
                f"model-only outputs: {k} of {len(mo['device_output'])} differ, max {olsb} LSB "
                f"(device {mo['device_output']}, reference {mo['reference_output']})")
        if not mo["top1_agree"]:
            (fails if top1_strict else notes).append(
                f"model-only top-1: device {mo['device_label']}, reference {mo['reference_label']}")
        if mo.get("label_inconsistent"):
            fails.append(f"model-only: device label {mo['device_label']} is not the argmax of its own output")
    return fails, notes


def _clip_out(row: dict[str, Any], notes: list[str], unit: str | None) -> str:
    lines = [f"label {row.get('label')}, reference top-1 {row.get('reference_label')}, "
             f"device top-1 {row.get('device_label')}"]
    for key, label in (("end_to_end", "end-to-end"), ("model_only", "model-only")):
        m = row.get(key)
        if m:
            cost = ", ".join(f"{k} {v:,}" for k, v in (m.get("cost") or {}).items())
            wall = m.get("wall_seconds")
            lines.append(f"{label}: output exact {m['output_exact']}, cosine {m.get('cosine')}, cost ({unit}) {cost}"
                         + (f", wall {wall * 1e3:.1f} ms" if wall is not None else "")
                         + (f", attempts {m['attempts']}" if m.get("attempts", 1) > 1 else ""))
    return "\n".join(lines + notes)


def build(report: dict[str, Any] | None, *, port: str | None = None, error: str | None = None) -> ET.Element:
    """The <testsuites> element for a report, or for a run that ended before it had one (``error``)."""
    root = ET.Element("testsuites", name=SUITE)
    created = (report or {}).get("created")
    stamp = created[:19] if created else None  # JUnit's timestamp has no time zone; host.parity writes UTC
    checks = _Suite(root, f"{SUITE}.checks", stamp)
    suites = [checks]
    if report is None:
        checks.prop("port", port)
        checks.case("run", error=error or "host.parity ended before connecting", error_type="UsageError")
    else:
        dev = report.get("device") or {}
        for k, v in (("port", report.get("port")), ("board", dev.get("board")),
                     ("firmware_version", dev.get("firmware_version")),
                     ("model_sha256", (report.get("reference") or {}).get("model_sha256")),
                     ("mode", report.get("mode")), ("cost_unit", (report.get("cost") or {}).get("unit")),
                     ("exit_status", report.get("exit_status"))):
            checks.prop(k, v)
        _check_cases(checks, report)
        clips = _Suite(root, f"{SUITE}.clips", stamp)
        suites.append(clips)
        th = report.get("thresholds") or {}
        unit = (report.get("cost") or {}).get("unit")
        for row in report.get("rows") or []:
            t = float(row.get("wall_seconds") or 0.0)
            fails, notes = clip_differences(row, th)
            err = row.get("error")
            out = _clip_out(row, notes, unit)
            if err and err["stage"] == "skipped":
                clips.case(row["file"], skipped=err["message"])
            elif err:
                clips.case(row["file"], time=t, error=f"{err['stage']}: {err['message']}", error_type=err.get("type", "error"),
                           details=err.get("traceback") or f"{err['stage']}: {err['message']}"
                           + (f" (after {err['attempts']} attempt(s))" if err.get("attempts") else ""),
                           out=out + ("\n" + "\n".join(fails) if fails else ""))
            elif fails:
                clips.case(row["file"], time=t, failure="; ".join(fails), details="\n".join(fails + notes), out=out)
            else:
                clips.case(row["file"], time=t, out=out)
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        s.close()
        for k in total:
            total[k] += s.counts[k]
    for k, v in total.items():
        root.set(k, str(v))
    root.set("time", f"{float((report or {}).get('wall_seconds') or 0.0):.6f}")
    return root


def write_junit(path: str | Path, report: dict[str, Any] | None, *, port: str | None = None,
                error: str | None = None) -> Path:
    """Writes the JUnit XML file (atomically: a CI never reads half a file); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = build(report, port=port, error=error)
    ET.indent(root)
    tmp = path.with_name(path.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
