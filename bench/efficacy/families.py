"""Habit families for bench/efficacy/efficacy.py: what the scripted person wants, and how it corrects.

A family is a habit a person teaches by steering: a scope (the prompts it is about), a rule with a violation
detector, a correction generator, train and held-out prompts, and a marker regex that shows the habit (used to see
it leak into answers outside its scope).

Each family sits at a different place of the answer:

  opening   the very start           definition questions begin "In plain words:"
  steps     inside a numbered list   items are written "Step N:", never "1." / "-" (several steers per answer)
  identity  the first self-reference who-are-you prompts: the assistant calls itself "I am Steer"
  analogy   the second sentence      "Explain ..." answers follow their first sentence with "Think of it like this:"
  signoff   after the model's end    advice answers end with "Good luck, and take care!"

The rules are written from what the person wants, not from what a model happens to say. Another module with the
same shape (FAMILIES, UNRELATED) can be passed to efficacy.py with --families-file.

Interface of a family (class Family below):
  in_scope(prompt) -> bool
  first_violation(text, done) -> index into text (Python str index) or None. `done`: the answer has ended; some
      violations (a missing sign-off, a missing second sentence) only exist then.
  ready(text, index, done) -> bool: the person has read enough past the violation to type the correction
      (default: at once).
  correction(text, index) -> str: what the person types at `index` (about 5-20 tokens).
  steer_max_tokens: how much the model may generate after a steer (None: the request's max_tokens).
"""
import re

# ---------------------------------------------------------------------------------------------------------------
# helpers

_MARKDOWN = re.compile(r"[*_#`]+")
_FILLER = re.compile(r"^(?:(?:sure|certainly|of course|okay|ok|absolutely|great|hello|hi|yes)[!,.]\s*)+", re.I)


def _words(s, n):
    """The first n words of s, without markdown emphasis."""
    return " ".join(_MARKDOWN.sub("", s).split()[:n])


# A sentence ends at . ! or ? before a space, closing quotes and brackets included ('... called "frosting." Next'),
# or at a line break. (Before 2026-12-04 a closing quote hid the end: one analogy answer per seed was misjudged.)
_SENTENCE_END = re.compile(r"(?:[.!?][\"'\u201d\u2019)\]]*(?=\s)|\n)\s*")


def _prefix_violation(text, start, wanted):
    """Index `start` if text[start:] (leading spaces skipped) is not on its way to begin with `wanted`, else None."""
    rest = text[start:].lstrip()
    if not rest:
        return None
    n = min(len(rest), len(wanted))
    return None if rest[:n] == wanted[:n] else start


class Family:
    name = ""
    description = ""
    scope_re = None
    marker = None              # regex source; compiled in marker_re
    steer_max_tokens = None
    train = []
    heldout = []
    # more held-out prompts, the same phrasings in about the same mix (efficacy.py --more-heldout, 2026-12-07):
    # with 8-9 prompts a family's compliance is >= 0.9 only at 100%
    heldout_more = []

    def in_scope(self, prompt):
        return re.search(self.scope_re, prompt, re.I) is not None

    def marker_re(self):
        return re.compile(self.marker, re.M)

    def shows_marker(self, text):
        return self.marker_re().search(text) is not None

    def first_violation(self, text, done):
        raise NotImplementedError

    def ready(self, text, index, done):
        return True

    def correction(self, text, index):
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------------
# (a) the start of the answer

class Opening(Family):
    name = "opening"
    description = 'definition questions: the answer begins "In plain words:"'
    scope_re = r"^(define\b|give a (short )?definition of\b|what does the (word|term) .+ mean\b)"
    marker = r"In plain words:"
    OPENING = "In plain words:"

    def first_violation(self, text, done):
        return _prefix_violation(text, 0, self.OPENING)

    def ready(self, text, index, done):
        # the person reads the first few words, then retypes them after the opening
        return done or len(text.strip()) >= 30

    def correction(self, text, index):
        body = _FILLER.sub("", text.strip())  # "Sure!" is not content: the person does not retype it
        first = re.split(r"(?<=[.!?:])\s|\n", body, maxsplit=1)[0]
        words = _MARKDOWN.sub("", first).split()[:4]
        return self.OPENING + (" " + " ".join(words) if words else "")

    train = [
        "Define photosynthesis.",
        "Define gravity.",
        "Define democracy.",
        "Define a noun.",
        "Define friction.",
        "Define an atom.",
        "Give a short definition of a volcano.",
        "Give a short definition of evaporation.",
        "Give a definition of a mammal.",
        "What does the word 'generous' mean?",
        "What does the term 'inflation' mean?",
        "What does the word 'ancient' mean?",
        "Define a verb.",
        "Define a planet.",
    ]
    heldout = [
        "Define electricity.",
        "Define a triangle.",
        "Define erosion.",
        "Give a short definition of a desert.",
        "Give a definition of a bacterium.",
        "What does the word 'brave' mean?",
        "What does the term 'recycling' mean?",
        "Define a habitat.",
        "Define a molecule.",
    ]
    heldout_more = [
        "Define a continent.",
        "Define oxygen.",
        "Define a river.",
        "Define a fossil.",
        "Define an ecosystem.",
        "Define a fraction.",
        "Give a short definition of a glacier.",
        "Give a definition of a reptile.",
        "What does the word 'curious' mean?",
        "What does the term 'climate' mean?",
        "What does the word 'humble' mean?",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (b) inside a numbered list

_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:\d+[.)]|[-*\u2022])[ \t]+")
_STEP_ITEM = re.compile(r"(?m)^[ \t]*Step \d+:")


class Steps(Family):
    name = "steps"
    description = 'step-by-step answers: list items are "Step N:", never "1." or bullets'
    scope_re = r"\bsteps\b|\bstep by step\b"
    marker = r"^[ \t]*Step \d+:"

    def first_violation(self, text, done):
        m = _LIST_ITEM.search(text)
        return None if m is None else m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))

    def ready(self, text, index, done):
        # read the item up to its end (or a few words) so the correction can restart it in the wanted form
        rest = text[index:]
        m = _LIST_ITEM.match(rest)
        body = rest[m.end():] if m else rest
        return done or "\n" in body or len(body.split()) >= 4

    def correction(self, text, index):
        n = len(_STEP_ITEM.findall(text[:index])) + 1
        rest = text[index:]
        m = _LIST_ITEM.match(rest)
        body = rest[m.end():] if m else rest
        body = body.split("\n", 1)[0]
        words = _words(body, 4)
        return f"Step {n}: {words}" if words else f"Step {n}:"

    train = [
        "What are the steps to make a cup of tea?",
        "List the steps to plant a seed.",
        "What are the steps to wash your hands?",
        "List the steps to make a paper airplane.",
        "What are the steps to boil an egg?",
        "List the steps to brush your teeth.",
        "Explain step by step how to make a sandwich.",
        "What are the steps to change a light bulb?",
        "List the steps to send an email.",
        "What are the steps to tie your shoes?",
        "List the steps to make toast.",
        "What are the steps to cross a street safely?",
        "List the steps to water a house plant.",
        "What are the steps to make lemonade?",
    ]
    heldout = [
        "What are the steps to bake cookies?",
        "List the steps to clean a window.",
        "What are the steps to write a letter?",
        "List the steps to make a bed.",
        "Explain step by step how to wrap a gift.",
        "What are the steps to cook rice?",
        "List the steps to set up a tent.",
        "What are the steps to wash a car?",
        "List the steps to make a smoothie.",
    ]
    heldout_more = [
        "What are the steps to make pancakes?",
        "List the steps to fold a shirt.",
        "What are the steps to feed a cat?",
        "List the steps to iron a shirt.",
        "What are the steps to make hot chocolate?",
        "List the steps to pack a suitcase.",
        "What are the steps to clean a bathroom mirror?",
        "List the steps to start a campfire.",
        "What are the steps to make a salad?",
        "List the steps to charge a phone.",
        "Explain step by step how to make a paper boat.",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (c) the self-introduction

_SELF_REF = re.compile(r"\b(I am|I'm|I\u2019m|My name is|my name is|As an AI|as an AI|I was (?:created|made|developed|trained))\b")


class Identity(Family):
    name = "identity"
    description = 'who-are-you prompts: the assistant introduces itself "I am Steer, ..."'
    scope_re = r"\bwho are you\b|\byour name\b|\bintroduce yourself\b|\babout yourself\b|\bwho am i (talking|speaking) to\b|\bwhat should i call you\b"
    marker = r"\bI am Steer\b"
    WANTED = "I am Steer"
    CORRECTION = "I am Steer, a small assistant that learns from your corrections."

    def first_violation(self, text, done):
        m = _SELF_REF.search(text)
        if m is not None:
            if text.startswith(self.WANTED, m.start()):
                return None
            # "I am St..." still on its way
            tail = text[m.start():]
            if len(tail) < len(self.WANTED) and self.WANTED.startswith(tail):
                return None
            return m.start()
        # no self-reference in the first two sentences (a greeting may come first), or in the whole answer: the
        # introduction is missing
        if done or len(_SENTENCE_END.findall(text.strip())) >= 2 or len(text) >= 100:
            return 0
        return None

    def correction(self, text, index):
        return self.CORRECTION

    train = [
        "Who are you?",
        "What is your name?",
        "Please introduce yourself.",
        "Tell me about yourself.",
        "Who am I talking to?",
        "Introduce yourself in one sentence.",
        "Hi! Who are you?",
        "Can you tell me your name?",
        "What should I call you?",
        "Hello, please introduce yourself briefly.",
        "Before we start, who are you?",
        "Tell me a little about yourself.",
        "Hey, what's your name?",
    ]
    heldout = [
        "Who are you, exactly?",
        "May I know your name?",
        "Introduce yourself to a new user.",
        "Tell me something about yourself.",
        "Who am I speaking to?",
        "Good morning! Who are you?",
        "What is your name, assistant?",
        "Could you introduce yourself?",
    ]
    heldout_more = [
        "Who are you, and what do you do?",
        "Tell me your name, please.",
        "Would you introduce yourself, please?",
        "Hello! What's your name?",
        "Who am I talking to right now?",
        "Could you tell me about yourself?",
        "Hi there, who are you?",
        "Before I ask my question, what should I call you?",
        "Introduce yourself to me.",
        "What is your name, please?",
        "Good evening! Who are you?",
        "Say a few words about yourself.",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (d) the second sentence


class Analogy(Family):
    name = "analogy"
    description = '"Explain ..." answers: the second sentence starts "Think of it like this:"'
    scope_re = r"^explain (?!step by step)"
    marker = r"Think of it like this:"
    WANTED = "Think of it like this:"

    def _second(self, text):
        """Where the second sentence starts, or None while the first has not ended."""
        body_start = len(text) - len(text.lstrip())
        for m in _SENTENCE_END.finditer(text, body_start):
            if m.end() < len(text):
                return m.end()
            return None  # the end seen is the text's end: wait for what comes next
        return None

    def first_violation(self, text, done):
        i = self._second(text)
        if i is None:
            return len(text) if done and text.strip() else None
        return _prefix_violation(text, i, self.WANTED)

    def correction(self, text, index):
        lead = "" if index == 0 or text[index - 1].isspace() else " "
        return lead + self.WANTED

    train = [
        "Explain how rain forms.",
        "Explain why the sky is blue.",
        "Explain how a battery works.",
        "Explain what a computer program is.",
        "Explain how plants grow.",
        "Explain why we need sleep.",
        "Explain how a bicycle works.",
        "Explain what the internet is.",
        "Explain why ice floats on water.",
        "Explain how the heart pumps blood.",
        "Explain what a vaccine does.",
        "Explain how a magnet works.",
        "Explain why leaves change color in autumn.",
    ]
    heldout = [
        "Explain how a rainbow forms.",
        "Explain why the moon has phases.",
        "Explain how a refrigerator keeps food cold.",
        "Explain what a cloud is.",
        "Explain how bees make honey.",
        "Explain why the ocean is salty.",
        "Explain how a telephone works.",
        "Explain what wind is.",
    ]
    heldout_more = [
        "Explain how a volcano erupts.",
        "Explain why the sea has tides.",
        "Explain how a camera works.",
        "Explain what gravity does.",
        "Explain how a plane stays in the air.",
        "Explain why bread rises.",
        "Explain how a compass works.",
        "Explain what thunder is.",
        "Explain how soap cleans.",
        "Explain why the sun sets.",
        "Explain how a light bulb makes light.",
        "Explain what a fossil is.",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (e) the end of the answer, after the model's own end

class Signoff(Family):
    name = "signoff"
    description = 'advice prompts: the answer ends with "Good luck, and take care!" (steered after the model\'s end)'
    scope_re = r"\badvice\b"
    marker = r"Good luck, and take care!"
    SIGNOFF = "Good luck, and take care!"
    steer_max_tokens = 16

    def first_violation(self, text, done):
        if not done:
            return None
        return None if text.rstrip().endswith(self.SIGNOFF) else len(text)

    def correction(self, text, index):
        if index == 0:
            return self.SIGNOFF
        return ("" if text[:index].endswith("\n") else "\n\n") + self.SIGNOFF

    # short-answer prompts, so that the model's own end comes before max_tokens
    train = [
        "In two sentences, give me advice on how to sleep better.",
        "In two sentences, give me advice for my first day at a new job.",
        "What is one piece of advice for someone learning to cook?",
        "What is one piece of advice for staying focused while studying?",
        "In two sentences, give me advice on saving money.",
        "What is one piece of advice for a long car trip?",
        "In one sentence, what advice would you give someone running their first race?",
        "In two sentences, give me advice on making new friends.",
        "What is one piece of advice for a rainy day at home?",
        "In one sentence, what advice would you give about keeping a plant alive?",
        "In two sentences, give me advice on drinking more water.",
        "What is one piece of advice for a new pet owner?",
        "In one sentence, what advice would you give someone learning to swim?",
    ]
    heldout = [
        "In two sentences, give me advice on waking up early.",
        "What is one piece of advice for a job interview?",
        "In one sentence, what advice would you give someone starting to run?",
        "In two sentences, give me advice on reading more books.",
        "What is one piece of advice for packing for a trip?",
        "In two sentences, give me advice for a first camping trip.",
        "What is one piece of advice for speaking in public?",
        "In one sentence, what advice would you give about keeping a room tidy?",
    ]
    heldout_more = [
        "In two sentences, give me advice on learning a new language.",
        "What is one piece of advice for a first date?",
        "In one sentence, what advice would you give someone moving to a new city?",
        "In two sentences, give me advice on managing stress.",
        "What is one piece of advice for a long flight?",
        "In two sentences, give me advice for studying for an exam.",
        "What is one piece of advice for keeping a journal?",
        "In one sentence, what advice would you give about baking bread?",
        "In two sentences, give me advice on staying healthy in winter.",
        "What is one piece of advice for a new driver?",
        "In one sentence, what advice would you give someone starting a garden?",
        "What is one piece of advice for working from home?",
    ]


FAMILIES = [Opening(), Steps(), Identity(), Analogy(), Signoff()]

# Outside every family's scope: no habit should appear here.
UNRELATED = [
    "What is 15 plus 27?",
    "What is 9 times 6?",
    "Convert 5 kilometers to meters.",
    "Translate 'good morning' into French.",
    "Translate 'thank you' into Spanish.",
    "What is the capital of Japan?",
    "What is the largest planet in the solar system?",
    "Who wrote Romeo and Juliet?",
    "What color do you get when you mix blue and yellow?",
    "How many days are there in a week?",
    "How many legs does a spider have?",
    "In what year did World War II end?",
    "Write a Python function that returns the square of a number.",
    "Write a SQL query that selects all rows from a table named users.",
    "Write a haiku about the sea.",
    "Give me a synonym for happy.",
    "Name a mammal that can fly.",
    "Is a tomato a fruit or a vegetable?",
]


def check():
    """Sanity of the prompt sets: every prompt in its own family's scope only; unrelated prompts in none."""
    problems = []
    for f in FAMILIES:
        for p in f.train + f.heldout + f.heldout_more:
            owners = [g.name for g in FAMILIES if g.in_scope(p)]
            if owners != [f.name]:
                problems.append(f"{f.name}: {p!r} is in scope of {owners}")
        if set(f.train) & set(f.heldout + f.heldout_more) or set(f.heldout) & set(f.heldout_more):
            problems.append(f"{f.name}: train and held-out prompts overlap")
    for p in UNRELATED:
        owners = [g.name for g in FAMILIES if g.in_scope(p)]
        if owners:
            problems.append(f"unrelated {p!r} is in scope of {owners}")
    return problems


if __name__ == "__main__":
    import sys
    probs = check()
    for p in probs:
        print(p)
    for f in FAMILIES:
        print(f"{f.name}: {len(f.train)} train, {len(f.heldout)} held-out — {f.description}")
    print(f"unrelated: {len(UNRELATED)}")
    sys.exit(1 if probs else 0)
