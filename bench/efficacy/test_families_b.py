#!/usr/bin/env python3
"""Self-test of families_b.py (plain Python, no server, no pytest): python3 bench/efficacy/test_families_b.py

  1. efficacy.py's own loader (load_families) takes the module, and its families have what efficacy.py reads.
  2. Scopes: every train/held-out prompt in its own family's scope only, unrelated prompts in none; and none of
     families.py's prompts in a scope here, none of these in one of families.py's (the two sets can be run on one
     server, one after the other, and their answers stay each other's out-of-scope).
  3. Detectors and corrections on hand-written answers in the model's style: compliant ones never fire, not even
     on a prefix of the stream; violating ones fire at the expected place, and fire there already while streaming
     (the scripted person sees the same index live as on the whole text); the correction is 5-20 tokens and, put
     in at that index, the violation does not come back there, neither on the kept prefix + correction (what the
     server keeps) nor on a plausible continuation.
  4. Markers: they show on the compliant answers that display the habit, and not on unrelated answers or on other
     families' compliant answers.
  5. The stored real answers of bench/results/efficacy*.json (when there): no detector or correction raises, and no
     correction re-fires at its own index; no marker in the base model's answers to unrelated prompts.
"""
import glob
import importlib.util
import json
import os
import re
import sys

sys.dont_write_bytecode = True   # no __pycache__ under bench/

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "..", "results")

problems = []


def fail(msg):
    problems.append(msg)


def tokens(s):
    """A rough token count for SmolLM2's tokenizer: digits one by one, words, punctuation, line breaks."""
    return len(re.findall(r"\d|[^\W\d_]+|[^\w\s]|\n", s))


def load_efficacy():
    spec = importlib.util.spec_from_file_location("efficacy_under_test", os.path.join(HERE, "efficacy.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


efficacy = load_efficacy()
B = efficacy.load_families(os.path.join(HERE, "families_b.py"))
A = efficacy.load_families(None)          # families.py
FAM = {f.name: f for f in B.FAMILIES}

# ---------------------------------------------------------------------------------------------------------------
# 1. what efficacy.py reads

names = [f.name for f in B.FAMILIES]
if len(set(names)) != len(names):
    fail(f"family names repeat: {names}")
if set(names) & {f.name for f in A.FAMILIES}:
    fail(f"family names shared with families.py (one results file keys families by name): {names}")
for f in B.FAMILIES:
    for attr in ("name", "description", "scope_re", "marker", "steer_max_tokens", "train", "heldout"):
        if not hasattr(f, attr):
            fail(f"{f.name}: no {attr}")
    re.compile(f.scope_re)
    f.marker_re()
    if len(f.train) != 10 or len(f.heldout) != 8:
        fail(f"{f.name}: {len(f.train)} train / {len(f.heldout)} held-out prompts, wanted 10 / 8")
if not 16 <= len(B.UNRELATED) <= 20:
    fail(f"{len(B.UNRELATED)} unrelated prompts")

# ---------------------------------------------------------------------------------------------------------------
# 2. scopes

for p in B.check():
    fail(f"check(): {p}")
a_prompts = [p for f in A.FAMILIES for p in f.train + f.heldout] + list(A.UNRELATED)
b_prompts = [p for f in B.FAMILIES for p in f.train + f.heldout] + list(B.UNRELATED)
if len(set(b_prompts)) != len(b_prompts):
    fail("a prompt appears twice in families_b.py")
for p in set(a_prompts) & set(b_prompts):
    fail(f"prompt in both modules: {p!r}")
for p in a_prompts:
    owners = [f.name for f in B.FAMILIES if f.in_scope(p)]
    if owners:
        fail(f"families.py prompt {p!r} is in scope of {owners}")
for p in b_prompts:
    owners = [f.name for f in A.FAMILIES if f.in_scope(p)]
    if owners:
        fail(f"families_b.py prompt {p!r} is in families.py's scope of {owners}")

# ---------------------------------------------------------------------------------------------------------------
# 3. detectors and corrections
#
# COMPLIANT[name]: (answer, shows the marker)
# VIOLATING[name]: (answer, where it breaks the rule: a substring starting there, or END; a continuation the model
#                   might write after the correction; where the corrected answer breaks it next: None, or a
#                   substring of the continuation (a second steer is due, later))

END = object()

COMPLIANT = {
    "verdict": [
        ("Yes. The sun is a star, a huge ball of hot gas that produces its own light and heat.", True),
        ("No, penguins cannot fly. Their wings have evolved into flippers that help them swim.", True),
        ("**Yes**, whales are mammals. They breathe air and feed their young with milk.", True),
        ("No! Sound travels much slower than light: about 343 meters per second.", True),
        ("Yes", False),   # a bare verdict when the answer ends there ("Yes" without a stop: no marker)
    ],
    "need": [
        ("Here's a simple recipe for guacamole:\n\nYou will need:\n- 3 ripe avocados\n- 1 lime, juiced\n"
         "- 1/2 cup diced onion\n- Salt to taste\n\nInstructions:\n1. Mash the avocados in a bowl.\n"
         "2. Stir in the lime juice, onion and salt.\n3. Serve with tortilla chips.", True),
        ("**You will need:**\n* 2 cups of chopped cucumber\n* 1 cup of plain yogurt\n\nMix everything and chill "
         "before serving.", True),
        ("You will need:\n2 cups of rolled oats\n1 cup of milk\n\nMix them in a jar and leave it overnight.", True),
        ("To make trail mix, combine a cup of nuts, a cup of raisins and a handful of chocolate chips in a jar, "
         "then shake it well.", False),
    ],
    "celsius": [
        ("Cooked chicken is safe to eat when its internal temperature reaches 74°C (165°F). Use a meat "
         "thermometer to check the thickest part.", True),
        ("Water boils at 100°C at sea level. At higher altitudes it boils at a lower temperature.", False),
        ("A refrigerator should be set to 3-4°C (37-40°F), and a freezer to -18°C (0°F).", True),
        ("Deep frying works best with oil at 175-190°C, or about 350-375°F.", False),
        ("A normal body temperature is about 37 degrees Celsius (98.6 degrees Fahrenheit).", True),
        ("Step 1: Knead the dough.\nStep 2 Fold the dough and let it rest at room temperature.", False),
    ],
    "inshort": [
        ("Frogs have smooth, moist skin and long legs for jumping, while toads have dry, bumpy skin and shorter "
         "legs.\n\nIn short: frogs are smooth jumpers, toads are bumpy walkers.", True),
        ("Weather is what happens in the sky from day to day; climate is the average over many years.\n"
         "In short: weather is today, climate is decades.", True),
        ("Tea has less caffeine than coffee and a lighter taste.\n\n**In short:** tea is gentler, coffee is "
         "stronger.\n", True),
    ],
}

VIOLATING = {
    "verdict": [
        ("Penguins are flightless birds that live in the Southern Hemisphere. They use their wings to swim.",
         "Penguins", " live in the Southern Hemisphere. They use their wings to swim.", None),
        ("The sun is a star located at the center of our solar system. It provides light and heat to the Earth.",
         "The sun", " at the center of our solar system.", None),
        ("Sure! The moon does not make its own light. It reflects the light of the sun.",
         "Sure!", " light. It reflects the light of the sun.", None),
        ("Yes the Pacific Ocean is the largest ocean on Earth, covering about a third of the planet.",
         "Yes the", " largest ocean on Earth.", None),
        ("Absolutely, dolphins are fish that live in the ocean and breathe through gills.",
         "Absolutely", " in the ocean.", None),
        ("  Mount Everest is the tallest mountain on Earth, at 8,849 meters above sea level.",
         "  Mount", " on Earth, at 8,849 meters above sea level.", None),
        ("No one can breathe underwater without equipment, because human lungs cannot take oxygen from water.",
         "No one", " without equipment.", None),
    ],
    "need": [
        ("Here is a recipe for hummus:\n\nIngredients:\n- 1 can of chickpeas\n- 2 tablespoons of tahini\n"
         "- 1 lemon, juiced\n\nInstructions:\n1. Blend everything until smooth.",
         "Ingredients:", "- 1 can of chickpeas\n- 2 tablespoons of tahini\n\nInstructions:\n1. Blend everything "
         "until smooth.", None),
        ("**Ingredients:**\n\n* 2 cups of rolled oats\n* 1 cup of milk\n* 1 tablespoon of honey",
         "**Ingredients:**", "* 2 cups of rolled oats\n* 1 cup of milk", None),
        ("### Ingredients\n- 4 ripe tomatoes\n- 1 small onion\n- 1 jalapeño",
         "### Ingredients", "- 4 ripe tomatoes\n- 1 small onion", None),
        ("Here's a quick recipe for a fruit salad that everyone will love:\n\n1. Chop 2 apples and 2 bananas.\n"
         "2. Add a cup of grapes.\n3. Squeeze some lemon juice on top.",
         "1. Chop", "- 2 apples\n- 2 bananas\n- 1 cup of grapes\n\n1. Chop the fruit.\n2. Mix it in a bowl.", None),
        ("Ingredients: 2 cucumbers, 1 cup of Greek yogurt, 1 clove of garlic and some fresh dill.\n\nGrate the "
         "cucumber and mix it with the rest.",
         "Ingredients:", "- 2 cucumbers\n- 1 cup of Greek yogurt\n- 1 clove of garlic", None),
        ("Caprese salad is a classic Italian dish.\n\nHere's what to do:\n- Slice 2 tomatoes\n- Slice 1 ball of "
         "mozzarella",
         "Here's what", "- 2 tomatoes\n- 1 ball of mozzarella\n- Fresh basil", None),
        ("What you'll need:\n- 1 cup of fresh basil\n- 1/4 cup of pine nuts",
         "What you'll", "- 1 cup of fresh basil\n- 1/4 cup of pine nuts", None),
    ],
    "celsius": [
        ("To bake a loaf of bread, preheat your oven to 375°F (190°C) and bake for 30 to 35 minutes, until the "
         "crust is golden brown.",
         "375°F", " and bake for 30 to 35 minutes, until the crust is golden brown.", None),
        ("A normal human body temperature is around 98.6 degrees Fahrenheit, or 37 degrees Celsius.",
         "98.6", ", give or take half a degree.", None),
        ("Bath water for a baby should be warm, not hot: about 100°F. Always test it with your elbow first.",
         "100°F", ". Always test it with your elbow first.", None),
        ("Roast vegetables at 425°F (220°C) for 20 minutes, then lower the oven to 400°F for another 10 minutes.",
         "425°F", " for 20 minutes, then lower the oven to 400°F for another 10 minutes.", "400°F"),
        ("On a hot day the inside of a parked car can reach 140-170 degrees F within an hour.",
         "140-170", " within an hour.", None),
        ("A home freezer should be kept at 0 °F or below.", "0 °F", " or below.", None),
        ("Heat the oil to between 350 and 375°F before frying.", "350 and", " before frying.", None),
    ],
    "inshort": [
        ("Frogs have smooth skin and long legs, while toads have dry, bumpy skin and short legs.",
         END, " their skin: frogs are smooth, toads are bumpy.", None),
        ("In short: trains are faster.", END, " that trains are faster and buses are cheaper.", None),
        ("Alligators have wide, U-shaped snouts.\n\nIn short: alligators are wider.\n\nI hope this helps!",
         END, " the snout.", None),
        ("A lake is larger and deeper than a pond.\nIn short, a lake is bigger.", END, " size.", None),
        ("A violin is smaller than a cello and is held under the chin.\n", END, " size.", None),
        ("E-books are light and cheap.\n\nIn short:", END, " weight.", None),
    ],
}

# the verdict the person types for each violating verdict answer (from the model's own words, see Verdict.correction)
VERDICTS = ["No.", "Yes.", "No.", "Yes.", "Yes.", "Yes.", "No."]


def stream_prefixes(text):
    """The text as a stream would show it, character by character (finer than any tokenizer)."""
    return (text[:n] for n in range(1, len(text) + 1))


def live_index(fam, text):
    """Where the scripted person would steer while the answer streams (None: only when it ended)."""
    for prefix in stream_prefixes(text):
        i = fam.first_violation(prefix, False)
        if i is not None and fam.ready(prefix, i, False):
            return i, prefix
    return None, text


n_cases = 0
for name, fam in FAM.items():
    for text, shows in COMPLIANT[name]:
        n_cases += 1
        if fam.first_violation(text, True) is not None:
            fail(f"{name}: compliant answer flagged at {fam.first_violation(text, True)}: {text[:60]!r}")
        for prefix in stream_prefixes(text):
            if fam.first_violation(prefix, False) is not None:
                fail(f"{name}: compliant answer flagged while streaming at {prefix[-30:]!r}")
                break
        if fam.shows_marker(text) != shows:
            fail(f"{name}: marker {'missing from' if shows else 'in'} {text[:60]!r}")

    for k, (text, at, cont, next_at) in enumerate(VIOLATING[name]):
        n_cases += 1
        want = len(text) if at is END else text.index(at)
        idx = fam.first_violation(text, True)
        if idx != want:
            fail(f"{name}: {text[:50]!r}: violation at {idx}, wanted {want}")
            continue
        # live: the same index, from the text seen so far (an end-of-answer rule: only when done)
        live, seen = live_index(fam, text)
        if at is END:
            if live is not None:
                fail(f"{name}: {text[:50]!r} flagged before its end, at {live}")
            seen = text
        elif live is None:
            # not ready before the end (a one-sentence answer for the verdict): the person steers after the end,
            # on the whole text (efficacy.person does not ask ready() then)
            seen = text
        elif live != want:
            fail(f"{name}: {text[:50]!r}: live violation at {live}, wanted {want}")
            continue
        elif not fam.ready(seen, live, False):
            fail(f"{name}: not ready at its own live violation")
        corr = fam.correction(seen, want)
        if not 5 <= tokens(corr) <= 20:
            fail(f"{name}: correction {corr!r} is ~{tokens(corr)} tokens, wanted 5-20")
        if name == "verdict" and not corr.startswith(VERDICTS[k]):
            fail(f"verdict: correction {corr!r} for {text[:40]!r}, wanted it to start {VERDICTS[k]!r}")
        kept = seen[:want] + corr
        again = fam.first_violation(kept, at is END)
        if again == want:
            fail(f"{name}: the correction {corr!r} leaves the violation at {want}: {kept[-60:]!r}")
        fixed = kept + cont
        nxt = fam.first_violation(fixed, True)
        want_next = None if next_at is None else len(kept) + cont.index(next_at)
        if nxt != want_next:
            fail(f"{name}: corrected answer {fixed[:80]!r}... flagged at {nxt}, wanted {want_next}")
        # the model may also go on with what it had written: that may look odd ("191°C (375°F) (190°C)") but
        # must not bring the same violation back where the person fixed it
        if at is not END:
            tail = text[want:]
            m = re.match(r"\S+", tail)
            redo = kept + tail[m.end():] if m else kept
            if fam.first_violation(redo, True) == want:
                fail(f"{name}: the model's own tail after the correction breaks the rule at {want} again")
        if not fam.shows_marker(fixed):
            fail(f"{name}: the corrected answer does not show the marker: {fixed[:80]!r}")

# the celsius correction's arithmetic, exactly
for text, want in [("Bake at 350°F.", "177°C (350°F)"), ("It is 98.6°F.", "37.0°C (98.6°F)"),
                   ("Keep it at 0°F.", "-18°C (0°F)"), ("Up to 1,000°F.", "538°C (1,000°F)"),
                   ("Fry at 350-375 degrees Fahrenheit.", "177-191°C (350-375°F)"),
                   ("Heat to 300 to 350°F.", "149 to 177°C (300 to 350°F)")]:
    c = FAM["celsius"]
    i = c.first_violation(text, True)
    got = None if i is None else c.correction(text, i)
    if got != want:
        fail(f"celsius: correction of {text!r} is {got!r}, wanted {want!r}")

# the in-short correction on a text that ends with a line break: one blank line, not two
c = FAM["inshort"]
if c.correction("A violin is small.\n", 19) != "\nIn short: the main difference is":
    fail(f"inshort: correction after a line break: {c.correction('A violin is small.', 19)!r}")
if c.first_violation("Tea is mild.", False) is not None:
    fail("inshort: flagged before the answer ended")

# ---------------------------------------------------------------------------------------------------------------
# 4. markers out of place

UNRELATED_ANSWERS = [
    "12 times 8 is 96.",
    "100 minus 37 equals 63.",
    "'Hello' in German is 'Hallo'.",
    "The capital of Canada is Ottawa.",
    "The Mona Lisa was painted by Leonardo da Vinci in the early 16th century.",
    "The chemical symbol for gold is Au, from the Latin word 'aurum'.",
    "There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America.",
    "```javascript\nfunction add(a, b) {\n  return a + b;\n}\n```\n\nThis function returns the sum of a and b.",
    "```python\nfor i in range(1, 6):\n    print(i)\n```",
    "Here are the numbers sorted from smallest to largest:\n- 1\n- 3\n- 5\n- 8",
    "In summary, penicillin was discovered by Alexander Fleming in 1928.",
    "There once was a cat named Lou,\nWho slept in a comfortable shoe.",
    "The plural of mouse is mice.",
    "HTML stands for HyperText Markup Language.",
]
for fam in B.FAMILIES:
    for t in UNRELATED_ANSWERS:
        if fam.shows_marker(t):
            fail(f"{fam.name}: marker in an unrelated answer: {t[:60]!r}")
    for other, answers in COMPLIANT.items():
        if other == fam.name:
            continue
        for t, _ in answers:
            if fam.shows_marker(t):
                fail(f"{fam.name}: marker in a compliant {other} answer: {t[:60]!r}")

# ---------------------------------------------------------------------------------------------------------------
# 5. the stored real answers of the model


def stored_texts():
    texts, unrelated = set(), set()

    def walk(o, key=None):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("text", "unsteered", "base", "this", "steered") and isinstance(v, str):
                    texts.add(v)
                    if key == "unrelated":
                        unrelated.add(v)
                else:
                    walk(v, k if k == "unrelated" else key)
        elif isinstance(o, list):
            for x in o:
                walk(x, key)
    for path in sorted(glob.glob(os.path.join(RESULTS, "efficacy*.json"))):
        with open(path) as f:
            res = json.load(f)
        walk(res)
        # The marker check below is about the base model's own unrelated answers: an adapter's may show its habit
        # (leakage, which the evaluation measures), so the adapters' are left out of it.
        base, adapters = evaluated_unrelated(res)
        unrelated -= adapters - base
    return sorted(texts), sorted(unrelated)


def evaluated_unrelated(res):
    """The answers to unrelated prompts of each model a results file evaluated: (the base model's, the adapters')."""
    base, adapters = set(), set()
    for runs in res.get("eval", {}).values():
        for label, run in runs.items():
            if isinstance(run, dict):
                answers = {a.get("text") for a in run.get("unrelated", []) if isinstance(a, dict)}
                if label == "base":
                    base |= answers
                else:
                    adapters |= answers | {e.get("this") for e in run.get("unrelated_examples", []) if isinstance(e, dict)}
    return base, adapters


real, real_unrelated = stored_texts()
fired = {f.name: 0 for f in B.FAMILIES}
for fam in B.FAMILIES:
    for t in real:
        for done in (False, True):
            try:
                i = fam.first_violation(t, done)
                if i is None:
                    continue
                fired[fam.name] += done
                corr = fam.correction(t, i)
            except Exception as e:   # noqa: BLE001 - any exception is the finding
                fail(f"{fam.name}: {type(e).__name__} {e} on a stored answer {t[:60]!r}")
                continue
            if fam.first_violation(t[:i] + corr, done) == i:
                fail(f"{fam.name}: correction {corr!r} re-fires at {i} on a stored answer {t[:60]!r}")
            # (the lower bound is for in-scope answers, above: "Yes." before a 16-digit number is all there is)
            if tokens(corr) > 20:
                fail(f"{fam.name}: correction {corr!r} on a stored answer is ~{tokens(corr)} tokens")
    for t in real_unrelated:
        if fam.shows_marker(t):
            fail(f"{fam.name}: marker in a stored unrelated answer: {t[:60]!r}")

# ---------------------------------------------------------------------------------------------------------------

for p in problems:
    print("FAIL", p)
print(f"families_b: {len(B.FAMILIES)} families ({', '.join(names)}), {sum(len(f.train) for f in B.FAMILIES)} train / "
      f"{sum(len(f.heldout) for f in B.FAMILIES)} held-out / {len(B.UNRELATED)} unrelated prompts; "
      f"{n_cases} hand-written answers; {len(real)} stored answers"
      + (f" ({len(real_unrelated)} unrelated), fired on ended answers: {fired}" if real else " (none found)"))
print("OK" if not problems else f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
