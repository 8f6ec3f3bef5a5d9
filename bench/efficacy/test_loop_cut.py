#!/usr/bin/env python3
"""Self-test of where the scripted person stops a loop (efficacy.loop_cut; plain Python, no server):
python3 bench/efficacy/test_loop_cut.py

For each streamed answer below, the person checks every prefix as it arrives; the first prefix where a loop shows is
where they stop, and the text they keep must be the expected one: the answer up to the sentence or line in which
the repetition begins, never a copy fewer than the rule allows, nothing kept from the repeated sentence itself.
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ under bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efficacy  # noqa: E402

CASES = [
    # a list whose third step says the first again (a line the second time): the list ends before it, as soon as
    # the line is whole
    ("Step 1: Mix the flour and the sugar.\nStep 2: Add the eggs and mix well.\nStep 3: Mix the flour and the sugar.\n"
     "Step 4: Bake it.",
     "Step 1: Mix the flour and the sugar.\nStep 2: Add the eggs and mix well."),
    # a phrase the third time, in lines that differ
    ("Step 1: Mix the flour and the sugar.\nStep 2: Add the eggs and mix well.\nStep 3: Mix the flour and the sugar "
     "slowly.\nStep 4: Bake it.\nStep 5: Mix the flour and the sugar again.\nStep 6: Serve.",
     "Step 1: Mix the flour and the sugar.\nStep 2: Add the eggs and mix well.\nStep 3: Mix the flour and the sugar "
     "slowly.\nStep 4: Bake it."),
    # SmolLM2-135M after the identity correction
    ("I am Steer, a small assistant that learns from your corrections. I am a non-profit organization that helps "
     "people. I am a non-profit organization that helps people. I am a non-profit organization that helps people.",
     "I am Steer, a small assistant that learns from your corrections. I am a non-profit organization that helps "
     "people. I am a non-profit organization that helps people."),
    # the phrase spans a line break ("... using. Step N: Determine the"): cut at the line, not inside it
    ("Step 1: Identify the type of light bulb you're using.\n\nStep 2: Determine the type of light bulb you're using."
     "\n\nStep 3: Determine the type of bulb you're using.\n\nStep 4: Determine the type of bulb.",
     "Step 1: Identify the type of light bulb you're using.\n\nStep 2: Determine the type of light bulb you're using."),
    # a line of four or more words said again
    ("1. Buy a good hat for the winter\n2. Get some boots\n1. Buy a good hat for the winter\n3. Gloves",
     "1. Buy a good hat for the winter\n2. Get some boots"),
    # a phrase overlapping itself
    ("In short, in short, in short, in short, in short, in short.", "In short,"),
    # a word three times in a row: one of it kept
    ("This is fine. It is fine fine fine.", "This is fine. It is fine"),
    # no loop: never stopped
    ("Photosynthesis turns light into sugar. Plants need water, light and air. That is all.", None),
]


def streamed_stop(answer, step=3):
    """The text kept when the stream is read `step` characters at a time and stopped at the first loop seen."""
    for n in range(1, len(answer) + step, step):
        text = answer[:n]
        cut = efficacy.loop_cut(text)
        if cut is not None:
            return text[:cut]
    return None


# The person's own correction ("In short: the main difference is", put in at character 160) and the model repeating
# the answer after it: the sentence the loop begins in is theirs, so they do not stop (the stop would cut it away).
OWN = ("A violin is a stringed instrument with a deep sound, while a cello is a stringed instrument with a keyboard "
       "and a larger range.")
OWN_CORRECTION = "\n\nIn short: the main difference is"
OWN_REST = (" that a violin is a stringed instrument with a deep sound, and a cello is a stringed instrument with a"
            " keyboard.")


def main():
    problems = []
    text = OWN + OWN_CORRECTION + OWN_REST
    floor = len(OWN + OWN_CORRECTION)
    if efficacy.loop_cut(text) is None or efficacy.loop_cut(text) >= floor:
        problems.append(f"the looping answer after a correction: expected a cut before the correction without a floor, "
                        f"got {efficacy.loop_cut(text)}")
    if efficacy.loop_cut(text, floor) is not None:
        problems.append(f"a stop cut into the person's own correction: {efficacy.loop_cut(text, floor)} < {floor}")
    # A loop kept before the correction does not hide a new one after it: that one is stopped, after the correction.
    before = "Add salt. Add salt. Add salt. Add salt. Add salt. Add salt. Add salt."
    after = " Then stir the soup well.\nThen stir the soup well.\nServe."
    got = efficacy.loop_cut(before + OWN_CORRECTION + after, len(before + OWN_CORRECTION))
    want = len(before + OWN_CORRECTION + " Then stir the soup well.")
    if got != want:
        problems.append(f"a loop after the correction, behind one before it: cut {got}, expected {want}")
    for answer, want in CASES:
        for step in (1, 3, 7):
            got = streamed_stop(answer, step)
            if got != want:
                problems.append(f"read {step} at a time: kept {got!r}, expected {want!r}")
            if got is not None and efficacy.degenerate(got):
                problems.append(f"the kept text still loops: {got!r}")
    for p in problems:
        print("FAIL", p)
    print(f"{len(CASES) + 2} answers, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
