#!/usr/bin/env python3
"""Does learning from steers work? A scripted person steers a running Steer server, trains on its steers, and
measures what the adapter learned — over HTTP only, Python stdlib only.

Phases (--phases, any of record,train,eval; default all three):

  record  for each family's train prompts: a greedy streamed answer; as soon as the text so far breaks the family's
          rule, POST /v1/chat/completions/{id}/steer {"at_char", "text"} while the same SSE stream goes on; further
          violations are steered too (at most --max-steers per answer); a rule only visible at the end (a sign-off)
          is steered after the stream ended, the steer's own response streaming the continuation. A stream that
          loops is stopped where the loop begins (--no-stop-loops: let run); where the family's habit is the answer's
          last line and the cut answer would lack it, the person cuts the loop with that line instead, a steer
          (--no-closing-at-loops: a bare stop). Every steer is tagged [family, run_tag]
          (and --also-tag). --record-with vN records against an adapter: a second round of steering.
  train   one POST /v1/fine_tuning/jobs per variant, on the steers tagged run_tag, eval.auto_activate false;
          polled until it ends (bounded); its time, status, adapter version and gate report are kept.
  eval    for MODEL@base and each variant's MODEL@vN (pinned, even when the gate refused it): greedy answers to the
          held-out prompts (never trained on) and to unrelated prompts; per family the compliance, the steers the
          scripted person still needs (live; those steers are tagged eval-<run_tag> and excluded from training),
          the marker's leakage out of scope, how many unrelated answers changed, and the degenerate rate.

  traffic the person's other use of the model: a streamed greedy answer to each of TRAFFIC's ordinary prompts (in no
          family's scope, none of the unrelated prompts), read to its end and never steered. The server records such
          answers as accepted (approved text that a job keeps the adapter at the base model on, docs/training.md);
          the eval phase's streams say "store": false, so nothing evaluated is ever trained on. The record phase's
          answers that needed no steer are kept as accepted too (the person let them run), since 2026-12-04.

The results go to one JSON file (--out; read back first, so phases can run in separate invocations with one
--run-tag) and a Markdown summary on stdout.

  python3 bench/efficacy/efficacy.py --url http://127.0.0.1:18181 --run-tag r1 --out bench/results/efficacy.json
  python3 bench/efficacy/efficacy.py ... --phases record --limit-train 3            # a quick small recording
  python3 bench/efficacy/efficacy.py ... --phases record,traffic                    # steers, then ordinary use
  python3 bench/efficacy/efficacy.py ... --phases train,eval --variants variants.json
"""
import argparse
import collections
import http.client
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


class Deadline(Exception):
    pass


class ApiProblem(Exception):
    """The server answered something the API documents otherwise, or an error status."""


# ---------------------------------------------------------------------------------------------------------------
# HTTP

class Client:
    def __init__(self, url, timeout, deadline):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.deadline = deadline
        self.problems = []   # API problems noticed, kept for the report

    def check_deadline(self):
        if time.time() > self.deadline:
            raise Deadline("the run's --deadline passed")

    def _open(self, method, path, body, timeout=None):
        self.check_deadline()
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        data = None if body is None else json.dumps(body)
        c.request(method, path, data, {"Content-Type": "application/json"} if data is not None else {})
        return c, c.getresponse()

    def call(self, method, path, body=None, ok=(200,)):
        """JSON request -> (status, parsed body or text)."""
        c, r = self._open(method, path, body)
        try:
            raw = r.read()
        finally:
            c.close()
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            obj = raw.decode("utf-8", "replace")
        if ok and r.status not in ok:
            raise ApiProblem(f"{method} {path} -> {r.status}: {str(obj)[:400]}")
        return r.status, obj

    def json(self, method, path, body=None):
        return self.call(method, path, body)[1]

    def open_stream(self, method, path, body):
        """A request whose answer may be SSE: (connection, response); the caller reads and closes."""
        return self._open(method, path, body)

    def note(self, kind, **detail):
        detail["kind"] = kind
        self.problems.append(detail)
        print(f"  ! {kind}: {json.dumps(detail)[:300]}", file=sys.stderr)


def sse_events(resp):
    """The JSON events of an SSE response, up to data: [DONE] (or the end of the body)."""
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError:
            continue


def utf16_len(s):
    """Java counts a String's length in UTF-16 units: at_char is one of those, not a Python code point index."""
    return len(s.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------------------------
# the scripted person

def person(cli, a, model, prompt, fam, tags, exclude=False):
    """Stream an answer and steer every violation of `fam`'s rule (at most a.max_steers). Returns what happened.
    exclude: an evaluation (its steers excluded from training, and an answer let run not stored as accepted)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "temperature": 0, "max_tokens": a.max_tokens, "seed": a.seed}
    if exclude:
        body["store"] = False
        body.update(a.sampling)
    t0 = time.time()
    conn, resp = cli.open_stream("POST", "/v1/chat/completions", body)
    if resp.status != 200:
        raise ApiProblem(f"POST /v1/chat/completions -> {resp.status}: {resp.read()[:300]!r}")
    cid, text, finish = None, "", None
    first_text = None           # the answer before any steer, when it ended unsteered
    steers = []                 # {"id", "at_char", "correction", "after_end"}
    sent = 0
    pending = None              # the steer sent and not yet seen in a stream: (kept text, correction)
    stopped = False             # this stream was stopped (a loop): what it still sends is not read
    floor = 0                   # where the person's last correction ends: a stop never cuts into it
    error = None
    try:
        while True:
            for ev in sse_events(resp):
                if time.time() - t0 > a.answer_timeout:
                    raise Deadline(f"answer took over {a.answer_timeout} s")
                cid = cid or ev.get("id")
                st = ev.get("steer")
                if st:
                    if pending is not None:
                        want = pending[0] + pending[1]
                        if st.get("content") != want:
                            cli.note("steer_content_mismatch", prompt=prompt, expected=want, got=st.get("content"))
                        pending = None
                    text = st.get("content") or ""
                    if st.get("id") and all(s.get("id") != st["id"] for s in steers):
                        if steers and steers[-1].get("id") is None:
                            steers[-1]["id"] = st["id"]
                        else:
                            steers.append({"id": st["id"]})
                    continue
                for ch in ev.get("choices") or []:
                    if pending is None and not stopped:
                        text += (ch.get("delta") or {}).get("content") or ""
                    if ch.get("finish_reason"):
                        finish = ch["finish_reason"]
                if pending is not None or stopped or sent >= a.max_steers:
                    continue
                idx = fam.first_violation(text, False)
                if idx is None and a.stop_loops:
                    cut = loop_cut(text, floor)
                    if cut is None:
                        continue
                    if not a.closing_at_loops or fam.first_violation(text[:cut], True) != cut:
                        if stop(cli, cid, text, cut, steers):
                            sent += 1
                            stopped = True
                            text = text[:cut]
                        continue
                    # The person's habit is the answer's last line, and an answer cut here would end without it: they
                    # cut the loop writing that line, as they would at the answer's end (a steer, not a bare stop).
                    idx = cut
                elif idx is None or not fam.ready(text, idx, False):
                    continue
                new = steer(cli, a, cid, text, idx, fam, steers)
                sent += 1
                if new is None:       # refused: stop steering this answer
                    sent = a.max_steers
                    continue
                pending = (text[:idx], steers[-1]["correction"])
                floor = idx + len(steers[-1]["correction"])
                if new is not True:   # it had finished meanwhile: the steer's own response streams the continuation
                    for _ in sse_events(resp):
                        pass
                    conn.close()
                    conn, resp = new
                    break
            else:
                # this stream ended
                if pending is not None:
                    cli.note("steer_chunk_missing", prompt=prompt, id=cid, sent=steers[-1])
                    pending = None
                if sent == 0 and first_text is None:
                    first_text = text
                if sent >= a.max_steers:
                    break
                idx = fam.first_violation(text, True)
                if idx is None:
                    break
                new = steer(cli, a, cid, text, idx, fam, steers, after_end=True)
                sent += 1
                if new is None:
                    break
                if new is True:
                    cli.note("steer_after_end_not_streamed", prompt=prompt, id=cid)
                    break
                conn.close()
                conn, resp = new
                pending = (text[:idx], steers[-1]["correction"])
                floor = idx + len(steers[-1]["correction"])
                finish = None
                stopped = False
                continue
            # (break out of the for: switched to a new stream)
            continue
    except (Deadline, OSError, ApiProblem, http.client.HTTPException) as e:
        if isinstance(e, Deadline) and time.time() > cli.deadline:
            raise
        error = f"{type(e).__name__}: {e}"
        cli.note("answer_error", prompt=prompt, error=error)
    finally:
        conn.close()
    ids = [s["id"] for s in steers if s.get("id")]
    for sid in ids:
        try:
            cli.json("POST", f"/v1/steers/{sid}/tags", {"tags": tags})
            if exclude:
                cli.json("POST", f"/v1/steers/{sid}/exclude", {"excluded": True})
        except ApiProblem as e:
            cli.note("tag_failed", steer=sid, error=str(e))
    final_violation = fam.first_violation(text, True)
    return {"prompt": prompt, "id": cid, "text": text, "unsteered": first_text, "finish_reason": finish,
            "steers": steers, "n_steers": len(steers), "complied": final_violation is None and error is None,
            "error": error, "seconds": round(time.time() - t0, 2)}


def loop_cut(text, floor=0):
    """Where a person reading the stream stops it because it loops (first_loop_cut), never before `floor`, the end of
    their own last correction: they do not cut the sentence they began (a closing "In short: ..." the model goes on
    to repeat). When the first loop lies before it, the text after the correction is searched for a loop of its own."""
    cut = first_loop_cut(text)
    if cut is not None and cut >= floor:
        return cut
    if 0 < floor < len(text):
        rest = first_loop_cut(text[floor:])
        return None if rest is None else floor + rest
    return None


def first_loop_cut(text):
    """None while `degenerate` sees no loop; else the start of the sentence or line in which the repetition that made
    it a loop begins (the third time of a phrase or word, the second of a line; never before the previous time began),
    with the whitespace before it; None when nothing would be left."""
    why = degenerate(text)
    if why is None or why == "empty":
        return None
    low = text.lower()
    at, prev = None, 0
    toks = list(re.finditer(r"\w+(?:'\w+)*", low))
    for i in range(2, len(toks)):
        if toks[i].group() == toks[i - 1].group() == toks[i - 2].group():
            at = prev = toks[i - 1].start()   # one of the word kept
            break
    if at is None:
        words, pos = [], 0   # (word, index in text), as degenerate reads them
        for line in text.splitlines(keepends=True):
            words += [(w, pos + i) for w, i in item_words(line)]
            pos += len(line)
        seen = collections.defaultdict(list)
        for i in range(len(words) - 5):
            g = tuple(w for w, _ in words[i:i + 6])
            seen[g].append(i)
            if len(seen[g]) == 3:   # (overlapping times count, as in degenerate: "in short, in short, in short, ...")
                at, prev = words[i][1], words[seen[g][1]][1]
                break
    if at is None:
        starts, pos = {}, 0
        for line in text.splitlines(keepends=True):
            key = " ".join(w for w, _ in item_words(line))
            if len(key.split()) >= 4 and line.rstrip("\r\n") != line:   # a whole line: the stream may go on with it
                if key in starts:
                    at, prev = pos, starts[key]
                    break
                starts[key] = pos
            pos += len(line)
    if at is None:
        return None
    boundary = max(text.rfind(c, 0, at) for c in ".!?\n")
    cut = max(prev, boundary + 1)
    while cut < at and text[cut].isspace():
        cut += 1
    cut = len(text[:cut].rstrip())
    return cut if cut > 0 else None


def stop(cli, cid, text, cut, steers):
    """POST the stop at `cut` (a loop): the answer should have ended there. True when recorded."""
    try:
        r = cli.json("POST", f"/v1/chat/completions/{cid}/stop", {"at_char": utf16_len(text[:cut])})
    except ApiProblem as e:
        cli.note("stop_refused", id=cid, error=str(e)[:300])
        return False
    steers.append({"id": r.get("id"), "at_char": cut, "stop": True, "removed_seen": text[cut:]})
    return True


def steer(cli, a, cid, text, idx, fam, steers, after_end=False):
    """POST the steer. True: applied live (JSON answer); (conn, resp): an SSE continuation; None: refused."""
    correction = fam.correction(text, idx)
    body = {"at_char": utf16_len(text[:idx]), "text": correction}
    if fam.steer_max_tokens:
        body["max_tokens"] = fam.steer_max_tokens
    rec = {"id": None, "at_char": idx, "correction": correction, "after_end": after_end,
           "removed_seen": text[idx:]}
    steers.append(rec)
    for attempt in range(3):
        conn, resp = cli.open_stream("POST", f"/v1/chat/completions/{cid}/steer", body)
        ctype = resp.getheader("Content-Type") or ""
        if resp.status == 200 and "text/event-stream" in ctype:
            if not after_end:
                rec["raced_end"] = True   # finished before the steer reached it
            return conn, resp
        raw = resp.read()
        conn.close()
        if resp.status == 200:
            try:
                r = json.loads(raw)
            except ValueError:
                r = {}
            rec["id"] = r.get("id")
            if after_end:
                cli.note("steer_after_end_answered_json", id=cid, body=body)
            kept = r.get("accepted")
            if kept is not None and r.get("correction") is not None and kept + r["correction"] != text[:idx] + correction:
                cli.note("steer_record_mismatch", id=cid, expected=text[:idx] + correction,
                         got=kept + r["correction"])
            return True
        if resp.status == 409 and attempt < 2:
            time.sleep(0.2)
            continue
        cli.note("steer_refused", id=cid, status=resp.status, body=body, answer=raw[:300].decode("utf-8", "replace"))
        steers.pop()
        return None
    return None


def plain_answer(cli, a, model, prompt, logprobs=False):
    """A greedy answer; with logprobs, also each of its first LOGPROB_TOKENS tokens with its top-20 alternatives."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": a.max_tokens, "seed": a.seed, "store": False, **a.sampling}
    if logprobs:
        body.update(logprobs=True, top_logprobs=20)
    try:
        r = cli.json("POST", "/v1/chat/completions", body)
        ch = r["choices"][0]
        out = {"text": ch["message"].get("content") or "", "finish_reason": ch.get("finish_reason"),
               "served_by": r.get("model")}
        if logprobs:
            content = (ch.get("logprobs") or {}).get("content") or []
            out["logprobs"] = [{"token": t["token"], "logprob": t["logprob"],
                                "top": {x["token"]: x["logprob"] for x in t.get("top_logprobs") or []}}
                               for t in content[:LOGPROB_TOKENS]]
        return out
    except (ApiProblem, OSError, http.client.HTTPException, KeyError) as e:
        cli.note("answer_error", prompt=prompt, model=model, error=str(e))
        return {"text": "", "finish_reason": None, "error": str(e)}


# ---------------------------------------------------------------------------------------------------------------
# metrics

# Tokens of an unrelated answer kept with their top-20 log-probabilities: enough to cover its first 40 characters.
LOGPROB_TOKENS = 32
# A base model's greedy choice it preferred by less than this (nats) over the token the adapter chose is a near-tie
# (the server's EvalGate.TIE_MARGIN): on SmolLM2-135M Q4_1 a random adapter too small to learn anything flips such
# ties in ~20% of answers, so flipping one is not a change the adapter made.
TIE_MARGIN = 0.5


def changed(base, this, chars=40):
    """"at all" when the first `chars` characters differ; "beyond a tie" when, at the first token where the two
    answers part, the base preferred its own token by TIE_MARGIN or more over this one's. Returns (at_all, beyond)."""
    if base["text"][:chars] == this["text"][:chars]:
        return False, False
    b_lp, t_lp = base.get("logprobs") or [], this.get("logprobs") or []
    for b, t in zip(b_lp, t_lp):
        if b["token"] != t["token"]:
            others = b["top"].get(t["token"], min(b["top"].values()) if b["top"] else float("-inf"))
            return True, b["logprob"] - others >= TIE_MARGIN
    return True, True


# A list item's numbering label at the start of a line: "3.", "3)", "Step 3:", "Item 3 -", or a bullet. Not counted
# as words of the item (since 2026-12-07, thirty-third session): digits and punctuation never were, so "3. Dry the car"
# twice was three words twice and no loop, while "Step 3: Dry the car" twice, the steps habit's form of the same list,
# was four words twice and a loop.
_LIST_LABEL = re.compile(r"^\s*(?:[^\W\d_]+[ \t]+)?\d+[ \t]*[.:)\-]|^\s*[-*\u2022]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def item_words(line):
    """The words of one line the loop rules read (degenerate, and first_loop_cut where the person stops a loop), each
    with its index in the line: lowercase, no digits or punctuation, a list item's numbering label left out."""
    low = line.lower()
    label = _LIST_LABEL.match(low)
    return [(w.group(), w.start()) for w in _WORD.finditer(low, label.end() if label else 0)]


def degenerate(text):
    """Why an answer looks like a loop, or None, on words without case, punctuation or digits: empty, a word 3 times
    in a row, a 6-word phrase 3+ times, a line of 4+ words twice, a list item's numbering label not counted (the
    server's gate, train/Degenerate, still uses the 4-word rule below).

    Six words, not four (the rule before 2026-12-02, kept as degenerate_4gram): a 96-token list says "a gift that
    is" or "a car wash machine" in three of its items without looping; every loop seen says a whole clause again."""
    if not text.strip():
        return "empty"
    tokens = re.findall(r"\w+(?:'\w+)*", text.lower())   # the run counts numbers as words ("Step 1 Step 2" is no run)
    for i in range(2, len(tokens)):
        if tokens[i] == tokens[i - 1] == tokens[i - 2]:
            return f"'{tokens[i]}' x3 in a row"
    body = [[w for w, _ in item_words(l)] for l in text.splitlines()]
    words = [w for l in body for w in l]
    grams = collections.Counter(tuple(words[i:i + 6]) for i in range(len(words) - 5))
    if grams:
        g, n = grams.most_common(1)[0]
        if n >= 3:
            return f"6-gram '{' '.join(g)}' x{n}"
    lines = [" ".join(l) for l in body if len(l) >= 4]
    if lines:
        l, n = collections.Counter(lines).most_common(1)[0]
        if n >= 2:
            return f"line '{l}' x{n}"
    return None


def degenerate_4gram(text):
    """The rule before 2026-12-02 (a word 4-gram 3+ times, a line of 8+ characters twice), reported beside."""
    if not text.strip():
        return "empty"
    words = re.findall(r"\w+", text.lower())
    grams = collections.Counter(zip(words, words[1:], words[2:], words[3:]))
    if grams:
        g, n = grams.most_common(1)[0]
        if n >= 3:
            return f"4-gram '{' '.join(g)}' x{n}"
    lines = [l.strip() for l in text.splitlines() if len(l.strip()) >= 8]
    if lines:
        l, n = collections.Counter(lines).most_common(1)[0]
        if n >= 2:
            return f"line repeated x{n}"
    return None


def compliance_where_base_clean(rows, base_rows):
    """Compliance on the held-out prompts whose base answer does not loop (None without a base evaluation): a loop
    the base model makes on a prompt by itself (a list that repeats its items) is not something the steered habit
    can be asked to remove; the base's and the adapter's loop rates are reported beside it."""
    clean = {r["prompt"] for r in base_rows if not degenerate(r["text"])}
    if not base_rows:
        return None
    rows = [r for r in rows if r["prompt"] in clean]
    return frac(r["violation"] is None and not r["degenerate"] for r in rows) if rows else None


def frac(xs):
    xs = list(xs)
    return round(sum(1 for x in xs if x) / len(xs), 3) if xs else None


def mean(xs):
    xs = list(xs)
    return round(sum(xs) / len(xs), 3) if xs else None


# ---------------------------------------------------------------------------------------------------------------
# phases

def train_prompts(fam, a):
    """The train prompts the person steers: all, the first --limit-train, or --limit-train spread evenly over the list
    (--spread-train). The lists are written in blocks of one phrasing ("Define ...", "Give a definition of ...", "What
    does the word ... mean?"), so the first nine of fourteen can miss a phrasing the held-out prompts have (s9's opening
    family: no "What does ... mean?" steered, five of its twenty held-out prompts in that form); spread, a smaller
    recording has about the family's mix, as its held-out prompts do."""
    n = a.limit_train
    if not n or n >= len(fam.train):
        return fam.train
    if not a.spread_train:
        return fam.train[:n]
    return [fam.train[(i * len(fam.train)) // n] for i in range(n)]


def phase_record(cli, a, model, fams, res):
    rec = res.setdefault("record", {}).setdefault(a.run_tag, {"families": {}})
    t0 = time.time()
    for fam in fams:
        prompts = train_prompts(fam, a)
        rows = []
        for i, p in enumerate(prompts):
            r = person(cli, a, model + "@" + (a.record_with or "base"), p, fam,
                       [fam.name, a.run_tag] + ([a.also_tag] if a.also_tag else []))
            rows.append(r)
            print(f"[record {fam.name} {i + 1}/{len(prompts)}] {r['n_steers']} steers, complied={r['complied']}: "
                  f"{r['text'][:90]!r}", file=sys.stderr)
        hist = collections.Counter(r["n_steers"] for r in rows)
        rec["families"][fam.name] = {
            "answers": len(rows),
            "steered_answers": sum(1 for r in rows if r["n_steers"]),
            "steers": sum(r["n_steers"] for r in rows),
            "steers_per_answer": {str(k): hist[k] for k in sorted(hist)},
            "after_end_steers": sum(1 for r in rows for s in r["steers"] if s.get("after_end")),
            "complied_after_steering": frac(r["complied"] for r in rows),
            "errors": sum(1 for r in rows if r["error"]),
            "answers_detail": rows,
        }
    fam_counts = rec["families"]
    rec["steers"] = sum(f["steers"] for f in fam_counts.values())
    rec["answers"] = sum(f["answers"] for f in fam_counts.values())
    rec["seconds"] = round(time.time() - t0, 1)
    try:
        listed = cli.json("GET", "/v1/steers?" + urllib.parse.urlencode({"tag": a.run_tag, "include_excluded": "false"}))
        rec["steers_listed_by_server"] = len(listed.get("data", []))
        if rec["steers_listed_by_server"] != rec["steers"] and not a.keep_existing_steers:
            cli.note("steer_count_mismatch", recorded=rec["steers"], listed=rec["steers_listed_by_server"],
                     hint="another recording with this --run-tag, or a steer not stored")
    except ApiProblem as e:
        cli.note("list_failed", error=str(e))


# The person's ordinary use of the model: requests no habit is about, in the kinds of the families files' UNRELATED
# lists (arithmetic, translation, facts, code, short verse, words) but none of those prompts, nor Steer's built-in
# replay, watch or probe prompts (server/.../train/ReplayPrompts.java). main() checks the scopes and the overlap.
TRAFFIC = [
    "What is 7 plus 8?",
    "What is 45 divided by 5?",
    "What is 11 times 11?",
    "Convert 3 hours to minutes.",
    "Translate 'good night' into Spanish.",
    "Translate 'friend' into French.",
    "Translate 'water' into German.",
    "What is the capital of Italy?",
    "What is the capital of Australia?",
    "Who wrote Pride and Prejudice?",
    "Who was the first person to walk on the moon?",
    "How many sides does a hexagon have?",
    "How many hours are there in a day?",
    "What is the smallest prime number?",
    "Which planet is known as the Red Planet?",
    "What language is spoken in Brazil?",
    "Name a bird that cannot fly.",
    "Give me a synonym for big.",
    "Give me a word that rhymes with cat.",
    "Write a Python function that returns the larger of two numbers.",
    "Write a SQL query that counts the rows in a table named orders.",
    "Write a short poem about the moon.",
    "What is the opposite of cold?",
    "Spell the word 'necessary' backwards.",
]


def traffic_problems(all_fams, unrelated):
    """TRAFFIC prompts that a family's rule would apply to, or that are evaluated as unrelated prompts."""
    problems = [f"traffic: {t!r} is in scope of {f.name}" for t in TRAFFIC for f in all_fams if f.in_scope(t)]
    problems += [f"traffic: {t!r} is an unrelated prompt" for t in TRAFFIC if t in unrelated]
    return problems


def phase_traffic(cli, a, model, res):
    """Stream each TRAFFIC prompt to its end, unsteered: the server keeps such answers as accepted."""
    t0 = time.time()
    done = 0
    for i, prompt in enumerate(TRAFFIC):
        body = {"model": model + "@base", "messages": [{"role": "user", "content": prompt}], "stream": True,
                "temperature": 0, "max_tokens": a.max_tokens, "seed": a.seed}
        conn, resp = cli.open_stream("POST", "/v1/chat/completions", body)
        try:
            if resp.status != 200:
                cli.note("traffic_failed", prompt=prompt, status=resp.status)
                continue
            text = "".join((ch.get("delta") or {}).get("content") or "" for ev in sse_events(resp) for ch in ev.get("choices", []))
            done += 1
            print(f"[traffic {i + 1}/{len(TRAFFIC)}] {text[:90]!r}", file=sys.stderr)
        finally:
            conn.close()
    res.setdefault("traffic", {})[a.run_tag] = {"answers": done, "seconds": round(time.time() - t0, 1)}


def load_variants(spec):
    if not spec:
        return [{"name": "default", "job": {}}]
    text = open(spec).read() if os.path.exists(spec) else spec
    v = json.loads(text)
    return v if isinstance(v, list) else [v]


def phase_train(cli, a, model, res, save=lambda: None):
    jobs = res.setdefault("jobs", {}).setdefault(a.run_tag, [])
    for v in load_variants(a.variants):
        body = dict(v.get("job") or {})
        # the run's steers, unless the variant names a tag of its own (a subset of them tagged apart)
        body["filters"] = dict({"tag": a.run_tag}, **(body.get("filters") or {}))
        body["eval"] = dict(body.get("eval") or {}, auto_activate=False)
        t0 = time.time()
        j = cli.json("POST", "/v1/fine_tuning/jobs", body)
        print(f"[train {v['name']}] job {j['id']} {j['status']}", file=sys.stderr)
        last = None
        while j["status"] not in ("succeeded", "failed", "cancelled"):
            if time.time() - t0 > a.job_timeout:
                cli.note("job_timeout", job=j["id"], after_s=a.job_timeout)
                try:
                    cli.json("POST", f"/v1/fine_tuning/jobs/{j['id']}/cancel", {})
                except ApiProblem:
                    pass
                break
            time.sleep(a.poll)
            j = cli.json("GET", f"/v1/fine_tuning/jobs/{j['id']}")
            step = (j.get("step"), j.get("total_steps"))
            if step != last:
                print(f"[train {v['name']}] {j['status']} step {step[0]}/{step[1]} eta {j.get('eta_seconds')}",
                      file=sys.stderr)
                last = step
        wall = time.time() - t0
        curve = j.get("loss_curve")
        jobs.append({
            "variant": v["name"], "request": body, "job_id": j["id"], "status": j["status"],
            "wall_s": round(wall, 1),
            "server_wall_s": (j["finished_at"] - j["created_at"]) if j.get("finished_at") else None,
            "fine_tuned_model": j.get("fine_tuned_model"), "adapter_version": j.get("adapter_version"),
            "hyperparameters": j.get("hyperparameters"), "method": j.get("method"),
            "total_steps": j.get("total_steps"), "trained_tokens": j.get("trained_tokens"),
            "tokens_per_second": j.get("tokens_per_second"),
            "loss_first_last": [curve[0], curve[-1]] if isinstance(curve, list) and curve else None,
            "eval": j.get("eval"), "verdict": (j.get("eval") or {}).get("verdict") if isinstance(j.get("eval"), dict) else None,
            "error": j.get("error"),
        })
        print(f"[train {v['name']}] {j['status']} in {wall:.0f} s -> {j.get('fine_tuned_model')} "
              f"verdict {jobs[-1]['verdict']}", file=sys.stderr)
        save()  # each job as it ends: a run cut short keeps the jobs it finished


def heldout_prompts(f, a):
    """A family's held-out prompts, with its heldout_more ones under --more-heldout (a families file may have none)."""
    return f.heldout + (getattr(f, "heldout_more", []) if a.more_heldout else [])


def eval_model(cli, a, model_id, fams, all_fams, unrelated, base_eval):
    """Answers and metrics of one model id."""
    out = {"model": model_id, "families": {}}
    heldout = {f.name: heldout_prompts(f, a)[:a.limit_heldout or None] for f in fams}
    plain = {}
    for f in fams:
        plain[f.name] = [dict(plain_answer(cli, a, model_id, p), prompt=p) for p in heldout[f.name]]
        print(f"[eval {model_id}] {f.name}: {len(plain[f.name])} held-out answers", file=sys.stderr)
    unrel = [dict(plain_answer(cli, a, model_id, p, logprobs=True), prompt=p) for p in unrelated]
    print(f"[eval {model_id}] {len(unrel)} unrelated answers", file=sys.stderr)
    served = {r.get("served_by") for rows in list(plain.values()) + [unrel] for r in rows if r.get("served_by")}
    if served and served != {model_id} and not a.as_served:
        cli.note("served_by_other_model", asked=model_id, served=sorted(served))
    if a.as_served:  # which answers the active version gave (its scope), and which the base model
        out["served_by_adapter"] = {name: frac("@base" not in (r.get("served_by") or "@base") for r in rows)
                                    for name, rows in list(plain.items()) + [("unrelated", unrel)]}
    for f in fams:
        rows = plain[f.name]
        for r in rows:
            r["violation"] = f.first_violation(r["text"], True)
            r["degenerate"] = degenerate(r["text"])
        live = [person(cli, a, model_id, r["prompt"], f, ["eval-" + a.run_tag, f.name], exclude=True) for r in rows]
        mism = [l["prompt"] for l, r in zip(live, rows) if l["unsteered"] is not None and l["unsteered"] != r["text"]]
        if mism:
            cli.note("stream_differs_from_plain", model=model_id, family=f.name, prompts=mism)
        others = [r for g in fams if g.name != f.name for r in plain[g.name]]
        base_rows = (base_eval or {}).get("families", {}).get(f.name, {}).get("answers", [])
        base_by_prompt = {r["prompt"]: r["text"] for r in base_rows}
        out["families"][f.name] = {
            "heldout": len(rows),
            "compliance": frac(r["violation"] is None and not r["degenerate"] for r in rows),
            "compliance_4gram": frac(r["violation"] is None and not degenerate_4gram(r["text"]) for r in rows),
            "compliance_base_clean": compliance_where_base_clean(rows, base_rows),
            "habit_shown": frac(f.shows_marker(r["text"]) for r in rows),
            "steers_needed_mean": mean(l["n_steers"] if l["complied"] else a.max_steers for l in live),
            "steers_needed": [l["n_steers"] if l["complied"] else None for l in live],
            "complied_within_cap": frac(l["complied"] for l in live),
            # The loops of the answers as the person left them: on the base model, what steering by hand gives (the
            # base continuing after a correction loops where it would anyway), the reference for an adapter's loops.
            "degenerate_after_steering": frac(degenerate(l["text"]) for l in live),
            "leakage": frac(f.shows_marker(r["text"]) for r in unrel + others),
            "leakage_unrelated": frac(f.shows_marker(r["text"]) for r in unrel),
            "leakage_examples": [r["text"][:120] for r in unrel + others if f.shows_marker(r["text"])][:3],
            "answers": [{"prompt": r["prompt"], "text": r["text"], "finish_reason": r["finish_reason"],
                         "violation": r["violation"], "degenerate": r["degenerate"], "served_by": r.get("served_by")} for r in rows],
            "examples": [{"prompt": r["prompt"], "base": base_by_prompt.get(r["prompt"]), "this": r["text"],
                          "steered": l["text"], "steers": l["n_steers"]} for r, l in list(zip(rows, live))[:a.examples]],
        }
    all_answers = [r for rows in plain.values() for r in rows] + unrel
    base_rows = {r["prompt"]: r for r in (base_eval or {}).get("unrelated", [])}
    out["unrelated"] = [{"prompt": r["prompt"], "text": r["text"], "finish_reason": r["finish_reason"],
                         "logprobs": r.get("logprobs"), "served_by": r.get("served_by")} for r in unrel]
    diffs = [changed(base_rows[r["prompt"]], r) for r in unrel if r["prompt"] in base_rows]
    out["unrelated_changed"] = frac(d[0] for d in diffs) if diffs else 0.0
    out["unrelated_changed_beyond_ties"] = frac(d[1] for d in diffs) if diffs else 0.0
    out["unrelated_examples"] = [{"prompt": r["prompt"], "base": base_rows.get(r["prompt"], {}).get("text"), "this": r["text"]}
                                 for r in unrel if r["prompt"] in base_rows and changed(base_rows[r["prompt"]], r)[0]][:a.examples]
    out["degenerate_rate"] = frac(degenerate(r["text"]) for r in all_answers)
    out["degenerate_unrelated"] = frac(degenerate(r["text"]) for r in unrel)
    out["degenerate_rate_4gram"] = frac(degenerate_4gram(r["text"]) for r in all_answers)
    out["degenerate_unrelated_4gram"] = frac(degenerate_4gram(r["text"]) for r in unrel)
    out["truncated_rate"] = frac(r["finish_reason"] == "length" for r in all_answers)
    return out


def phase_eval(cli, a, model, fams, all_fams, unrelated, res, save=lambda: None):
    ev = res.setdefault("eval", {}).setdefault(a.run_tag, {})
    targets = [("base", model + "@base")]
    if a.models:
        targets += [(m, m if "@" in m else model + "@" + m) for m in a.models.split(",") if m]
    else:
        for j in res.get("jobs", {}).get(a.run_tag, []):
            if j.get("adapter_version"):
                targets.append((j["variant"], model + "@" + j["adapter_version"]))
            else:
                print(f"[eval] variant {j['variant']}: no adapter ({j['status']}), not evaluated", file=sys.stderr)
    base_eval = None
    for label, mid in targets:
        if label == "base" and not a.reeval_base and "base" in ev and ev["base"].get("settings") == settings(a, fams):
            base_eval = ev["base"]
            print(f"[eval] base: reusing the stored evaluation", file=sys.stderr)
            continue
        t0 = time.time()
        if a.as_served and label != "base":
            # As a client gets it: the version made active and asked for by the model's plain name, so that its
            # scope routes each prompt (to it, or to the base model)
            cli.json("POST", f"/v1/adapters/{mid.split('@')[-1]}/activate", {})
            mid = model
        r = eval_model(cli, a, mid, fams, all_fams, unrelated, base_eval if label != "base" else None)
        r["label"], r["seconds"], r["settings"] = label, round(time.time() - t0, 1), settings(a, fams)
        if label == "base":
            base_eval = r
            for f in r["families"].values():
                for e in f["examples"]:
                    e["base"] = e["this"]
            r["unrelated_changed"] = r["unrelated_changed_beyond_ties"] = 0.0
        ev[label] = r
        save()  # each model as it is judged
    if a.as_served:
        cli.json("POST", "/v1/adapters/base/activate", {})


def phase_rescore(a, fams, res):
    """Metrics again from the stored answers, with this code's detectors (no server needed)."""
    by_name = {f.name: f for f in fams}
    for label, m in res.get("eval", {}).get(a.run_tag, {}).items():
        fam_rows = {n: f["answers"] for n, f in m["families"].items() if n in by_name}
        unrel = m.get("unrelated", [])
        for n, rows in fam_rows.items():
            f, fm = by_name[n], m["families"][n]
            for r in rows:
                r["violation"] = f.first_violation(r["text"], True)
                r["degenerate"] = degenerate(r["text"])
            others = [r for g, rs in fam_rows.items() if g != n for r in rs]
            fm["compliance"] = frac(r["violation"] is None and not r["degenerate"] for r in rows)
            fm["compliance_4gram"] = frac(r["violation"] is None and not degenerate_4gram(r["text"]) for r in rows)
            base_rows = res["eval"][a.run_tag].get("base", {}).get("families", {}).get(n, {}).get("answers", [])
            fm["compliance_base_clean"] = compliance_where_base_clean(rows, base_rows)
            fm["habit_shown"] = frac(f.shows_marker(r["text"]) for r in rows)
            fm["leakage"] = frac(f.shows_marker(r["text"]) for r in unrel + others)
            fm["leakage_unrelated"] = frac(f.shows_marker(r["text"]) for r in unrel)
        all_answers = [r for rows in fam_rows.values() for r in rows] + unrel
        m["degenerate_rate"] = frac(degenerate(r["text"]) for r in all_answers)
        m["degenerate_unrelated"] = frac(degenerate(r["text"]) for r in unrel)
        m["degenerate_rate_4gram"] = frac(degenerate_4gram(r["text"]) for r in all_answers)
        m["degenerate_unrelated_4gram"] = frac(degenerate_4gram(r["text"]) for r in unrel)


def settings(a, fams):
    return {"max_tokens": a.max_tokens, "seed": a.seed, "max_steers": a.max_steers, "families": [f.name for f in fams],
            "limit_heldout": a.limit_heldout, "more_heldout": a.more_heldout, "stop_loops": a.stop_loops, "closing_at_loops": a.closing_at_loops,
            **({"sampling": a.sampling} if a.sampling else {})}


# ---------------------------------------------------------------------------------------------------------------
# report

def markdown(res, run_tag):
    lines = []
    rec = res.get("record", {}).get(run_tag)
    if rec:
        lines += [f"### Recording `{run_tag}`: {rec['answers']} answers, {rec['steers']} steers, {rec['seconds']} s", "",
                  "| family | answers | steered | steers | per answer | after end | complied after steering |",
                  "|---|---|---|---|---|---|---|"]
        for n, f in rec["families"].items():
            lines.append(f"| {n} | {f['answers']} | {f['steered_answers']} | {f['steers']} | {f['steers_per_answer']} "
                         f"| {f['after_end_steers']} | {f['complied_after_steering']} |")
        lines.append("")
    jobs = res.get("jobs", {}).get(run_tag, [])
    if jobs:
        lines += ["### Jobs", "", "| variant | status | wall s | steps | tok/s | model | verdict | held-out NLL base -> adapter | drift |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for j in jobs:
            e = j.get("eval") or {}
            nll = f"{e.get('base_nll', e.get('baseNll', '?'))} -> {e.get('adapter_nll', e.get('adapterNll', '?'))}" if e else ""
            lines.append(f"| {j['variant']} | {j['status']} | {j['wall_s']} | {j.get('total_steps')} | {j.get('tokens_per_second')} "
                         f"| {j.get('fine_tuned_model')} | {j.get('verdict')} | {nll} | {e.get('drift', '')} |")
        lines.append("")
    ev = res.get("eval", {}).get(run_tag, {})
    if ev:
        lines += ["### Held-out evaluation (greedy)", "",
                  "| model | family | compliance (4-gram rule) | where the base does not loop | habit shown | steers needed | complied <= cap | loops: greedy / after steering | leakage (unrelated) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label, m in ev.items():
            for n, f in m["families"].items():
                lines.append(f"| {label} | {n} | {f['compliance']} ({f.get('compliance_4gram', '-')}) | {f.get('compliance_base_clean', '-')} "
                             f"| {f['habit_shown']} | {f['steers_needed_mean']} "
                             f"| {f['complied_within_cap']} | {frac(a['degenerate'] for a in f['answers'])} / {f.get('degenerate_after_steering', '-')} "
                             f"| {f['leakage']} ({f['leakage_unrelated']}) |")
        lines += ["", "| model | unrelated changed (first 40 chars) | beyond near-ties | degenerate (4-gram rule) | degenerate unrelated (4-gram rule) | truncated |",
                  "|---|---|---|---|---|---|"]
        for label, m in ev.items():
            lines.append(f"| {label} | {m['unrelated_changed']} | {m.get('unrelated_changed_beyond_ties', '-')} "
                         f"| {m['degenerate_rate']} ({m.get('degenerate_rate_4gram', '-')}) "
                         f"| {m['degenerate_unrelated']} ({m.get('degenerate_unrelated_4gram', '-')}) "
                         f"| {m['truncated_rate']} |")
        lines.append("")
    probs = res.get("api_problems", {}).get(run_tag)
    if probs:
        kinds = collections.Counter(p["kind"] for p in probs)
        lines += ["API problems noticed: " + ", ".join(f"{k} x{n}" for k, n in kinds.items()), ""]
    return "\n".join(lines)


def machine():
    u = platform.uname()
    m = {"uname": " ".join([u.system, u.node, u.release, u.version, u.machine]), "nproc": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                m["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        m["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                  text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        m["gpu"] = None
    return m


def load_families(path):
    if path is None:
        path = os.path.join(HERE, "families.py")
    spec = importlib.util.spec_from_file_location("efficacy_families", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--model", help="the base model id (default: the first of /v1/models without '@')")
    p.add_argument("--phases", default="record,train,eval", help="record,traffic,train,eval; or rescore alone (no server)")
    p.add_argument("--run-tag", default="efficacy", help="tags this recording's steers; jobs train on it")
    p.add_argument("--families", help="comma-separated family names (default: all)")
    p.add_argument("--families-file", help="a module with FAMILIES and UNRELATED (default: families.py here)")
    p.add_argument("--limit-train", type=int, default=0, help="train prompts per family (0: all)")
    p.add_argument("--spread-train", action="store_true", help="--limit-train's prompts evenly spaced over each "
                   "family's list, not its first ones (every phrasing of the family in the recording)")
    p.add_argument("--limit-heldout", type=int, default=0, help="held-out prompts per family (0: all)")
    p.add_argument("--more-heldout", action="store_true", help="also each family's heldout_more prompts (20 held-out "
                   "prompts a family instead of 8-9: with 8 a family's compliance is >= 0.9 only at 100%%)")
    p.add_argument("--limit-unrelated", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--max-steers", type=int, default=4, help="steers per answer at most")
    p.add_argument("--record-with", help="record against this adapter version (vN) instead of the base: a second "
                   "round of steering, the person using the model a job made")
    p.add_argument("--also-tag", help="tag the recorded steers with this tag too (a second round under its own "
                   "--run-tag, trained with the first: jobs filter by this one)")
    p.add_argument("--no-stop-loops", dest="stop_loops", action="store_false",
                   help="the person lets loops run (before 2026-12-05); by default a loop is stopped where it begins")
    p.add_argument("--no-closing-at-loops", dest="closing_at_loops", action="store_false",
                   help="the person stops every loop bare (before 2026-12-05, fourteenth session); by default, where the "
                        "family's habit is the answer's last line and the cut answer would lack it, the person cuts the "
                        "loop with that line (a steer)")
    p.add_argument("--variants", help="JSON (or a file of it): [{\"name\", \"job\": {method, hyperparameters, eval}}]")
    p.add_argument("--models", help="eval these adapter versions (v3,v4 or full ids) instead of the run's jobs'")
    p.add_argument("--reeval-base", action="store_true", help="evaluate the base again even if stored")
    p.add_argument("--as-served", action="store_true", help="eval each version as a client gets it: activated, asked for "
                   "by the plain model name (its scope routes each prompt); the base model is active afterwards")
    p.add_argument("--keep-existing-steers", action="store_true", help="don't warn when the tag already had steers")
    p.add_argument("--sampling", type=json.loads, default={}, help="JSON fields added to every evaluated request "
                   "(e.g. '{\"dry_multiplier\": 0}': the adapters without their default DRY penalty; "
                   "'{\"dry_multiplier\": 0.8}' with --reeval-base: the base model with it)")
    p.add_argument("--examples", type=int, default=3)
    p.add_argument("--http-timeout", type=float, default=120, help="seconds per HTTP read")
    p.add_argument("--answer-timeout", type=float, default=180, help="seconds per scripted answer")
    p.add_argument("--job-timeout", type=float, default=3600)
    p.add_argument("--poll", type=float, default=2.0)
    p.add_argument("--deadline", type=float, default=4 * 3600, help="seconds for the whole run")
    p.add_argument("--out", help="results JSON (read first if it exists, then updated)")
    a = p.parse_args()

    mod = load_families(a.families_file)
    all_fams = mod.FAMILIES
    fams = [f for f in all_fams if not a.families or f.name in a.families.split(",")]
    if not fams:
        sys.exit(f"no family among {a.families}; have {[f.name for f in all_fams]}")
    if hasattr(mod, "check"):
        for prob in mod.check():
            print(f"families: {prob}", file=sys.stderr)
    unrelated = mod.UNRELATED[:a.limit_unrelated] if a.limit_unrelated else mod.UNRELATED
    for prob in traffic_problems(all_fams, mod.UNRELATED):
        print(f"families: {prob}", file=sys.stderr)

    if a.phases == "rescore":
        with open(a.out) as f:
            res = json.load(f)
        phase_rescore(a, fams, res)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        print(markdown(res, a.run_tag))
        return
    cli = Client(a.url, a.http_timeout, time.time() + a.deadline)
    model = a.model
    if not model:
        ids = [m["id"] for m in cli.json("GET", "/v1/models")["data"]]
        model = next(i for i in ids if "@" not in i)
    res = {}
    if a.out and os.path.exists(a.out):
        with open(a.out) as f:
            res = json.load(f)
    res.update({"bench": "efficacy", "machine": machine(), "url": a.url, "model": model})
    res.setdefault("families", {}).update({f.name: {"description": f.description, "train": len(f.train),
                                                    "heldout": len(heldout_prompts(f, a)), "marker": f.marker} for f in fams})
    res["unrelated_prompts"] = len(unrelated)
    res.setdefault("settings", {})[a.run_tag] = dict(settings(a, fams), limit_train=a.limit_train, spread_train=a.spread_train,
                                                      phases=a.phases, variants=load_variants(a.variants))

    earlier_problems = res.get("api_problems", {}).get(a.run_tag, [])

    def save():
        res.setdefault("api_problems", {})[a.run_tag] = earlier_problems + cli.problems
        if a.out:
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            tmp = a.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(res, f, indent=1)
                f.write("\n")
            os.replace(tmp, a.out)

    phases = a.phases.split(",")
    t0 = time.time()
    try:
        if "record" in phases:
            phase_record(cli, a, model, fams, res)
            save()
        if "traffic" in phases:
            phase_traffic(cli, a, model, res)
            save()
        if "train" in phases:
            phase_train(cli, a, model, res, save)
            save()
        if "eval" in phases:
            phase_eval(cli, a, model, fams, all_fams, unrelated, res, save)
    except Deadline as e:
        print(f"stopped: {e}", file=sys.stderr)
        res["stopped"] = str(e)
    finally:
        res.setdefault("seconds", {})[a.run_tag] = round(time.time() - t0, 1)
        save()
    print(markdown(res, a.run_tag))


if __name__ == "__main__":
    main()
