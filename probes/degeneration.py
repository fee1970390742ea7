"""generation.degeneration: the output pathologies of seed 002, read from generated outputs.

"True" for every input (constant output), the question echoed back (input echo), ``[0, 0, 0, …]``
(all PAD / empty), "Morbus Morbus Morbus" (repetition loop), and outputs that run to the length limit
without the end token. Pure function of (inputs, outputs, ids); ``probes.generation`` produces them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "generation.degeneration"
LOOP_REPEATS = 3  # an n-gram repeated this many times back to back is a loop


def repetition_loop(text: str, max_n: int = 3) -> str | None:
    """The first n-gram (n<=max_n) repeated ``LOOP_REPEATS`` times in a row, e.g. ``'Morbus'``."""
    words = text.split()
    for n in range(1, max_n + 1):
        for i in range(len(words) - n * LOOP_REPEATS + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(1, LOOP_REPEATS)):
                return " ".join(gram)
    return None


def is_echo(source: str, output: str) -> bool:
    """Output copied from the input: a substring of it, or >=80% of its words taken from it (3+ words)."""
    out = " ".join(output.lower().split())
    src = " ".join(source.lower().split())
    if not out:
        return False
    if len(out) >= 8 and out in src:
        return True
    words = out.split()
    return len(words) >= 3 and sum(w in set(src.split()) for w in words) / len(words) >= 0.8


def degeneration(
    inputs: list[str],
    outputs: list[str],
    *,
    output_ids: list[list[int]] | None = None,
    pad_token_id: int | None = None,
    end_token_id: int | None = None,
    end_token: str | None = None,
    ended: list[bool] | None = None,
    stopped_on_foreign_eos: list[bool] | None = None,
    echo_recipes: list[str] | None = None,
    check_echo: bool = True,
) -> list[Finding]:
    """Detect constant, echoed, empty/all-PAD, looping and never-ending outputs.

    ``echo_recipes`` defaults to add-task-prefix (T5, seed 002); pass ``[]`` for models where an echo
    has another cause (a copy-pretrained BART whose new tokens are untrained). ``check_echo=False`` where
    repeating the input is expected (a continued patient timeline names the codes it already holds)."""
    n = len(outputs)
    if n == 0:
        return [Finding(PROBE, Severity.INFO, "no generated outputs to inspect")]
    norm = [" ".join(o.split()) for o in outputs]
    checks: list[tuple[str, list[int], list[str], str]] = []  # (issue, indices, recipes, explanation)
    echo_recipes = ["add-task-prefix"] if echo_recipes is None else echo_recipes
    all_pad = []
    if output_ids is not None and pad_token_id is not None:
        all_pad = [i for i, ids in enumerate(output_ids) if ids and all(t == pad_token_id for t in ids)]
    checks.append(("all-PAD output", all_pad, ["mask-label-padding"], "every generated id is the pad id"))
    foreign = stopped_on_foreign_eos or [False] * n
    empty = [i for i, o in enumerate(norm) if not o and i not in all_pad]
    by_eos = bool(empty) and all(i < len(foreign) and foreign[i] for i in empty)
    checks.append(("empty output", empty, ["block-pretrained-eos"] if by_eos else ["mask-label-padding"],
                   "a pretrained EOS came first" if by_eos else "nothing but special tokens was generated"))
    loops = {i: loop for i, o in enumerate(norm) if (loop := repetition_loop(o))}
    checks.append(("repetition loop", list(loops), ["anti-repetition-decoding"], f"an n-gram repeated {LOOP_REPEATS}+ times in a row"))
    echo = [i for i, (s, o) in enumerate(zip(inputs, norm, strict=False)) if check_echo and is_echo(s, o)]
    checks.append(("input echo", echo, echo_recipes, "the output is copied from the input"))
    counts = Counter(o for o in norm if o)
    top_out, top_n = counts.most_common(1)[0] if counts else ("", 0)
    distinct_inputs = len({" ".join(s.split()) for s in inputs})
    constant = [i for i, o in enumerate(norm) if o == top_out] if n >= 3 and distinct_inputs > 1 and top_n / n >= 0.8 else []
    checks.append(("same output for every input", constant, ["train-longer", "lower-learning-rate"], f"{top_n}/{n} different inputs give {top_out!r}"))
    if ended is None and output_ids is not None and end_token_id is not None:
        ended = [end_token_id in ids for ids in output_ids]
    if ended is None and end_token:
        ended = [end_token in o for o in outputs]
    early = [i for i, e in enumerate(ended or []) if not e and i < len(foreign) and foreign[i]]
    checks.append(("stops on the pretrained EOS before the end token", early, ["block-pretrained-eos"], "a foreign EOS ended it"))
    never = [i for i, e in enumerate(ended or []) if not e and i not in early and i not in all_pad]
    checks.append(("never emits the end token", never, ["fix-truncation"], "generation ran to the length limit"))

    evidence: dict[str, Any] = {"n": n, "distinct_outputs": len(set(norm)), "distinct_inputs": distinct_inputs}
    keys = ["all_pad", "empty", "repetition_loop", "input_echo", "constant_output", "stops_on_pretrained_eos", "never_ends"]
    evidence.update({key: round(len(idx) / n, 3) for key, (_, idx, _, _) in zip(keys, checks, strict=True)})
    findings = []
    for issue, idx, recipes, why in checks:
        share = len(idx) / n
        if share < 0.2:
            continue
        sev = Severity.FAIL if share >= 0.5 and issue not in ("never emits the end token",) else Severity.WARN
        examples = [{"input": inputs[i] if i < len(inputs) else "", "output": outputs[i],
                     **({"loop": loops[i]} if i in loops else {}),
                     **({"ids": (output_ids or [])[i][:12]} if output_ids and issue == "all-PAD output" else {})}
                    for i in idx[:4]]
        findings.append(Finding(PROBE, sev, f"{issue} in {len(idx)}/{n} generations ({why})", evidence, examples, recipes,
                                rule="warn at >=20% of generations, fail at >=50% (never-ending output stays a warning)"))
    if not findings:
        findings.append(Finding(PROBE, Severity.OK, f"{n} generations: {len(set(norm))} distinct, no loops, echoes or empty outputs",
                                evidence, [{"input": i, "output": o} for i, o in list(zip(inputs, outputs, strict=False))[:3]],
                                rule="warn at >=20% of generations, fail at >=50%"))
    return findings
