"""A second, independent set of habit families for bench/efficacy/efficacy.py (--families-file).

families.py holds the habits Steer's training was tuned on; this module checks that the default training
generalizes to other habits, at other places of the answer, on other topics. The shape is the same (FAMILIES,
UNRELATED, check(); the Family interface is described in families.py's docstring), but nothing is imported from
there: the two sets stay independent, and either can change without moving the other.

Each family sits at a different place of the answer:

  verdict   the first word            yes/no questions begin "Yes." or "No." (the person picks the one the model's
                                      own first sentence implies)
  need      the line before a list    recipes introduce their first list with the line "You will need:" (the
                                      model's own header, "Ingredients:", is replaced)
  celsius   each temperature, inline  temperature questions give Celsius first: "175°C (350°F)", never "350°F"
                                      alone or first (several steers per answer; the correction is computed)
  inshort   the last line             short comparisons end with a line "In short: ..." that the model completes
                                      (steered after the model's end)

What the base model (SmolLM2-135M-Instruct Q4_1) does, from the stored answers of bench/results/efficacy*.json:
no answer begins with "Yes"/"No" or has an "In short" line; oven temperatures come Fahrenheit first ("Preheat your
oven to 325°F (165°C)", "120 degrees Fahrenheit"), science ones Celsius first ("18°C (32°F)"); its one recipe
answer heads its list "Ingredients:". So every family costs steers on the base model, and none is one it has.

The topics avoid families.py's: no definitions, step lists, self-introductions, "Explain ..." or advice; the recipes
need no oven (a Celsius habit would otherwise show up in them as leakage), the yes/no questions are about the world,
not the assistant. `python3 bench/efficacy/test_families_b.py` checks the scopes against both modules and runs the
detectors and corrections on hand-written answers and on the stored real ones.
"""
import re

# ---------------------------------------------------------------------------------------------------------------
# helpers (the same as families.py's where the name is the same: copied, not imported, see above)

_MARKDOWN = re.compile(r"[*_#`]+")
# "Yes" and "No" are left out of families.py's filler list: here they are the habit, not filler
_FILLER = re.compile(r"^(?:(?:sure|certainly|of course|okay|ok|absolutely|great|hello|hi|well|actually)[!,.]\s*)+", re.I)

# A sentence ends at . ! or ? before a space, closing quotes and brackets included, or at a line break.
_SENTENCE_END = re.compile(r"(?:[.!?][\"'\u201d\u2019)\]]*(?=\s)|\n)\s*")

# A list item: "1." / "1)" / "-" / "*" / "•" and a space at the start of a line ("**Bold**" is no item).
_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:\d+[.)]|[-*\u2022])[ \t]+")


def _rough_tokens(s):
    """About how many SmolLM2 tokens s is: digits one by one, words, punctuation, line breaks."""
    return len(re.findall(r"\d|[^\W\d_]+|[^\w\s]|\n", s))


def _first_sentence(s):
    return re.split(r"(?<=[.!?])\s|\n", s.strip(), maxsplit=1)[0]


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
# (a) the first word: a verdict

_VERDICT = re.compile(r"[*_]*(?:Yes|No)[*_]*[.,!]")
_VERDICT_ON_ITS_WAY = re.compile(r"[*_]*(?:Y|Ye|Yes|N|No)?[*_]*")
# the model's own leading yes/no ("No one knows ..." is none)
_MODEL_VERDICT = re.compile(r"(yes|no)\b(?!\s+(?:one|longer|matter|doubt)\b)[.,!:;]?\s*", re.I)
# What makes the model's own first sentence a "no": a negation, or a word that denies ("flightless", "a myth").
_NEGATION = re.compile(r"\b(?:no|not|never|none|nothing|neither|nor|cannot|unable|impossible|myth|false|untrue|"
                       r"incorrect|flightless)\b|n['\u2019]t\b", re.I)


class Verdict(Family):
    name = "verdict"
    description = 'yes/no questions: the answer begins "Yes." or "No." (then explains)'
    # A yes/no question starts with an auxiliary verb; "X or Y?" asks to choose, not to confirm, and questions about
    # the assistant ("Can you ...", "your name") belong to other habits (families.py's identity).
    scope_re = r"^(?:is|are|can|does|do|did|was|were|has|have|will)\b(?!.*\b(?:or|you|your)\b)"
    marker = r"\A\s*[*_]*(?:Yes|No)[*_]*[.,!]"

    def first_violation(self, text, done):
        rest = text.lstrip()
        if not rest:
            return None
        if _VERDICT.match(rest):
            return None
        if done and re.fullmatch(r"[*_]*(?:Yes|No)[*_]*\s*", rest):
            return None   # a bare "Yes" is a verdict too
        if not done and _VERDICT_ON_ITS_WAY.fullmatch(rest):
            return None   # "Ye", "**No": wait for the next character
        return 0

    def _body(self, text):
        """The model's own verdict word ("Yes"/"No", or None) and the answer after it, or after a filler ("Sure!")."""
        s = _MARKDOWN.sub("", text).strip()
        m = _MODEL_VERDICT.match(s)
        if m:
            return m.group(1).capitalize(), s[m.end():]
        return None, _FILLER.sub("", s)

    def ready(self, text, index, done):
        # the person reads the first sentence of what the model says ("Sure!" says nothing): it decides between
        # "Yes." and "No."; a one-sentence answer is judged when it ends
        body = self._body(text)[1]
        return done or _SENTENCE_END.search(body) is not None or len(body) >= 80

    def correction(self, text, index):
        """ "Yes." or "No.", then the first words of the model's first sentence, retyped. The person does not
        fact-check a 135M model: the verdict is the one the model's own words imply (its own leading yes/no if it
        had one, else "No." when its first sentence negates), so a steer teaches the form, not a fact."""
        verdict, body = self._body(text)
        if verdict is None:
            verdict = "No" if _NEGATION.search(_first_sentence(body)) else "Yes"
        words = _first_sentence(body).split()[:5]
        if len(words) < 3:       # "Definitely." is too little to retype: the answer's first words, across sentences
            words = body.split()[:5]
        if words:
            words[0] = words[0][:1].upper() + words[0][1:]
        out = f"{verdict}."
        for w in words:          # a person types a few words, not a 16-digit number (digits are a token each)
            if _rough_tokens(out + " " + w) > 18:
                break
            out += " " + w
        return out

    train = [
        "Is the sun a star?",
        "Can penguins fly?",
        "Are whales mammals?",
        "Does the moon make its own light?",
        "Is Mount Everest the tallest mountain on Earth?",
        "Can humans breathe underwater without equipment?",
        "Is the Pacific the largest ocean?",
        "Do plants need sunlight to grow?",
        "Does sound travel faster than light?",
        "Is a dolphin a fish?",
    ]
    heldout = [
        "Is the Earth round?",
        "Can ostriches fly?",
        "Are spiders insects?",
        "Does water expand when it freezes?",
        "Is Venus closer to the Sun than the Earth is?",
        "Is the Great Wall of China visible from space?",
        "Are diamonds made of carbon?",
        "Was Shakespeare born in England?",
    ]
    heldout_more = [
        "Is the Moon larger than the Earth?",
        "Can snakes hear?",
        "Are tomatoes fruits?",
        "Does ice sink in water?",
        "Is gold a metal?",
        "Are bats blind?",
        "Can cats see in the dark?",
        "Was the Eiffel Tower built in Paris?",
        "Is Mars called the red planet?",
        "Do fish sleep?",
        "Has anyone walked on the Moon?",
        "Will the Sun burn out one day?",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (b) the line before the first list

_WANTED_HEADER = re.compile(r"[ \t]*[#*_]*[ \t]*You will need:[*_ \t]*\n?")
# A header naming what to get, which the person replaces by its own wording, whether a list follows or not.
_INGREDIENT_HEADER = re.compile(r"(?:ingredients|what you(?:'ll| will) need|you'll need|shopping list)\b[^.!?\n]{0,40}:"
                                r"|(?:ingredients|shopping list)\s*$", re.I)


def _lines(text):
    """The lines of text, each with its "\n" (the last one may lack it); only "\n" breaks a line, as in the
    stream (str.splitlines also breaks at form feeds and other separators)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _header_like(line):
    """A line that heads what follows rather than says something: a markdown heading, a bold-only line, or at most
    four words ending with a colon ("Ingredients:", "Here's a recipe:")."""
    bare = _MARKDOWN.sub("", line).strip()
    return (line.lstrip().startswith("#") or re.fullmatch(r"\*\*[^*]+\*\*:?", line.strip()) is not None
            or (bare.endswith(":") and len(bare.split()) <= 4))


class Need(Family):
    name = "need"
    description = 'recipes: the first list is introduced by the line "You will need:" (not "Ingredients:")'
    scope_re = r"\brecipe\b"
    marker = r"^[ \t]*[#*_]*[ \t]*You will need:"
    HEADER = "You will need:"

    def first_violation(self, text, done):
        """Lines are read in order up to the first list item: a "You will need:" line before it complies; an
        ingredient header ("Ingredients:", "**What you'll need:**") is replaced where it stands, list or not; at the
        first item, the line before it is replaced if it is a header, else the wanted line goes in before the item.
        Only the first list counts: a recipe's later "Instructions:" list is the model's business."""
        pos = 0
        prev = None               # (start, line) of the last non-empty line
        for line in _lines(text):
            start, pos = pos, pos + len(line)
            if _LIST_ITEM.match(line):
                if prev is not None and _header_like(prev[1]):
                    return prev[0]
                return start
            if not (line.endswith("\n") or done):
                return None       # a line being written: judged when it ends
            if not line.strip():
                continue
            if _WANTED_HEADER.fullmatch(line):
                return None
            if _INGREDIENT_HEADER.match(_MARKDOWN.sub("", line).strip()):
                return start
            prev = (start, line)
        return None

    def correction(self, text, index):
        # the violation is always at a line's start: the header line, then the model writes the list
        return self.HEADER + "\n"

    # no-oven dishes: their answers have no temperatures, which the celsius habit would claim
    train = [
        "Give me a simple recipe for guacamole.",
        "Share a recipe for a Greek salad.",
        "What is a good recipe for hummus?",
        "Write a short recipe for fresh tomato salsa.",
        "Give me a recipe for overnight oats.",
        "Share a quick recipe for a fruit salad.",
        "What is an easy recipe for coleslaw?",
        "Give me a recipe for a caprese salad.",
        "Write a simple recipe for trail mix.",
        "Share a recipe for tzatziki sauce.",
    ]
    heldout = [
        "Give me a simple recipe for chia pudding.",
        "Share a recipe for a cucumber salad.",
        "What is a good recipe for basil pesto?",
        "Write a short recipe for a tuna salad.",
        "Give me a recipe for no-bake energy balls.",
        "Share a quick recipe for a mango lassi.",
        "What is an easy recipe for gazpacho?",
        "Write a simple recipe for a three-bean salad.",
    ]
    heldout_more = [
        "Give me a simple recipe for banana bread.",
        "Share a recipe for a lentil soup.",
        "What is a good recipe for pancakes?",
        "Write a short recipe for an egg salad.",
        "Give me a recipe for a berry smoothie.",
        "Share a quick recipe for garlic bread.",
        "What is an easy recipe for a potato salad?",
        "Write a simple recipe for granola bars.",
        "Give me a recipe for a green salad.",
        "Share a recipe for a chickpea curry.",
        "What is a good recipe for lemonade?",
        "Write a short recipe for a yogurt parfait.",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (c) every temperature, inside the sentence

_NUM = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?"
_RANGE_SEP = r"\s*(?:-|\u2013|\u2014|to|and)\s*"
_RANGE = rf"(?:{_NUM})(?:{_RANGE_SEP}(?:{_NUM}))?"
_RANGE_PARTS = rf"({_NUM})(?:({_RANGE_SEP})({_NUM}))?"
_DEG = "(?:\u00b0|\u00ba|\u02da)"          # °, º and ˚: the model's degree signs
# "350°F", "350 °F", "350℉", "350 degrees F", "350 degrees Fahrenheit", "350F", "350 Fahrenheit". The unit's
# letter must be followed by a character that is no letter: in a stream "Step 2 F" may become "Step 2 Fold" with
# the next token (first_violation pads an ended answer with a newline so that a final "350°F" counts).
_F_UNIT = rf"\s*(?:{_DEG}\s*F(?:ahrenheit)?(?=[^A-Za-z])|\u2109|degrees?\s+F(?:ahrenheit)?(?=[^A-Za-z])|F(?:ahrenheit)?(?=[^A-Za-z]))"
_C_UNIT = rf"\s*(?:{_DEG}\s*C(?:elsius)?\b|\u2103|degrees?\s+C(?:elsius)?\b|C(?:elsius)?\b)"
# A figure starts at a number's start (not inside "1350"): the lookbehind.
_F_FIG = re.compile(rf"(?<![\w.,])({_RANGE}){_F_UNIT}")
# Fahrenheit is fine right after a Celsius figure: "175°C (350°F)", "175°C / 350°F", "175°C, or about 350°F".
_AFTER_CELSIUS = re.compile(rf"(?<![\w.,])(?:{_RANGE}){_C_UNIT}\s*(?:\(|/|,|=)?\s*(?:or\s+)?"
                            rf"(?:about|around|approximately|roughly)?\s*$")


def _celsius(f):
    return (f - 32) * 5 / 9


class Celsius(Family):
    name = "celsius"
    description = 'temperature questions: Celsius first, "175°C (350°F)"; never a Fahrenheit figure alone or first'
    scope_re = r"\btemperature\b|\bhow (?:hot|cold|warm)\b|\bdegrees\b"
    marker = rf"\d{_C_UNIT}\s*\(\s*(?:about |around |approximately )?(?:{_RANGE}){_F_UNIT}\s*\)"

    def first_violation(self, text, done):
        """The first Fahrenheit figure not right after a Celsius one, at its number's start. A figure is seen once
        its unit is ("350" alone waits); a bare "350 degrees" says no unit and is not judged."""
        scan = text + "\n" if done else text
        for m in _F_FIG.finditer(scan):
            if not _AFTER_CELSIUS.search(scan, 0, m.start()):
                return m.start()
        return None

    def correction(self, text, index):
        """The same figure converted, Celsius first and the Fahrenheit kept in brackets: "350°F" -> "177°C (350°F)",
        "350-375 degrees Fahrenheit" -> "177-191°C (350-375°F)". Whole degrees unless the model gave decimals."""
        m = _F_FIG.match(text + "\n", index)
        if m is None:           # not reached by first_violation's indices; a plain answer to a stray call
            return "in Celsius first, then Fahrenheit in brackets"
        fig = m.group(1)
        # "350-375": the dash is the range's, not a minus of 375
        parts = re.fullmatch(_RANGE_PARTS, fig)
        nums = [parts.group(1)] + ([parts.group(3)] if parts.group(3) else [])
        decimals = "." in fig.replace(",", "")
        cs = []
        for n in nums:
            c = _celsius(float(n.replace(",", "")))
            cs.append(f"{c:.1f}" if decimals else str(int(round(c))))
        c_fig = cs[0] if len(cs) == 1 else cs[0] + parts.group(2) + cs[1]
        return f"{c_fig}\u00b0C ({fig}\u00b0F)"

    train = [
        "What temperature should I bake a loaf of bread at?",
        "At what temperature is cooked chicken safe to eat?",
        "What temperature should a refrigerator be set to?",
        "What is a normal human body temperature?",
        "How hot should the oil be for deep frying?",
        "What temperature should a home freezer be?",
        "How warm should bath water be for a baby?",
        "What oven temperature is best for roasting vegetables?",
        "At what temperature does water boil?",
        "How hot can the inside of a parked car get in summer?",
    ]
    heldout = [
        "What temperature should I roast a turkey at?",
        "How hot should a pizza oven be?",
        "What is a comfortable room temperature for sleeping?",
        "What temperature should a steak reach for medium rare?",
        "How cold should a wine fridge be?",
        "What water temperature is best for brewing green tea?",
        "How warm should a swimming pool be?",
        "At what temperature does water freeze?",
    ]
    heldout_more = [
        "What temperature should I bake cookies at?",
        "How hot should a sauna be?",
        "What temperature should milk be for a latte?",
        "At what temperature does chocolate melt?",
        "How cold should a beer be served?",
        "What is a safe temperature for a fish tank?",
        "How warm should a room be for a newborn?",
        "What temperature should I cook salmon to?",
        "How hot does a cup of coffee get?",
        "What oven temperature is best for baking a cake?",
        "How cold is it at the top of Mount Everest?",
        "What temperature should a hot tub be?",
    ]


# ---------------------------------------------------------------------------------------------------------------
# (d) the last line, after the model's own end

_IN_SHORT = re.compile(r"[ \t]*[*_#>]*[ \t]*In short:[*_]*\s*\w")


class InShort(Family):
    name = "inshort"
    description = 'short comparisons: the last line begins "In short:" (steered after the model\'s end)'
    scope_re = r"\bdifference between\b|\bcompare\b|\bdiffer\b|\bversus\b|\bvs\b"
    marker = r"^[ \t]*[*_#>]*[ \t]*In short:"
    LEAD = "In short: the main difference is"
    # room for the model to finish the line the correction starts
    steer_max_tokens = 40

    def first_violation(self, text, done):
        """When the answer has ended: its last non-empty line must begin "In short:" and say something after it,
        below at least one line of the answer proper (an answer that is only the summary is not a comparison)."""
        if not done or not text.strip():
            return None
        lines = text.strip().split("\n")
        last = lines[-1]
        before = "\n".join(lines[:-1])
        if _IN_SHORT.match(last) and before.strip():
            return None
        return len(text)

    def correction(self, text, index):
        """A new line, and the start of the summary: the model completes it (steer_max_tokens)."""
        before = text[:index]
        if not before.strip():
            return self.LEAD
        sep = "" if before.endswith("\n\n") else "\n" if before.endswith("\n") else "\n\n"
        return sep + self.LEAD

    # one or two sentences: the model's own end comes before 96 tokens (families.py's advice prompts: "In one
    # sentence" always ended in the stored runs, "In two sentences" in ~70%)
    train = [
        "In one sentence, what is the difference between a frog and a toad?",
        "In two sentences, what is the difference between weather and climate?",
        "In one sentence, compare trains and buses for a daily commute.",
        "In two sentences, what is the difference between a lake and a pond?",
        "In one sentence, compare tea and coffee.",
        "In two sentences, how do alligators and crocodiles differ?",
        "In one sentence, what is the difference between a violin and a cello?",
        "In two sentences, compare e-books and paper books.",
        "In one sentence, what is the difference between a hurricane and a tornado?",
        "In two sentences, compare living in a city versus the countryside.",
    ]
    heldout = [
        "In one sentence, what is the difference between a rabbit and a hare?",
        "In two sentences, what is the difference between a sea and an ocean?",
        "In one sentence, compare cycling and walking to work.",
        "In two sentences, compare cats and dogs as pets.",
        "In one sentence, how do butterflies and moths differ?",
        "In two sentences, what is the difference between a guitar and a ukulele?",
        "In one sentence, compare a beach holiday and a ski holiday.",
        "In two sentences, what is the difference between a hill and a mountain?",
    ]
    heldout_more = [
        "In one sentence, what is the difference between a cup and a mug?",
        "In two sentences, what is the difference between a bee and a wasp?",
        "In one sentence, compare running and swimming for fitness.",
        "In two sentences, compare tablets and laptops for students.",
        "In one sentence, how do rivers and streams differ?",
        "In two sentences, what is the difference between a city and a town?",
        "In one sentence, compare summer and winter holidays.",
        "In two sentences, what is the difference between a boat and a ship?",
        "In one sentence, what is the difference between a cake and a muffin?",
        "In two sentences, how do apes and monkeys differ?",
        "In one sentence, compare buses versus trams.",
        "In two sentences, compare reading on paper and on a screen.",
    ]


FAMILIES = [Verdict(), Need(), Celsius(), InShort()]

# Outside every family's scope (this module's and families.py's): no habit should appear here.
UNRELATED = [
    "What is 12 times 8?",
    "What is 100 minus 37?",
    "What is the square root of 81?",
    "Translate 'hello' into German.",
    "Translate 'see you tomorrow' into Italian.",
    "What is the capital of Canada?",
    "Who painted the Mona Lisa?",
    "What is the chemical symbol for gold?",
    "How many continents are there?",
    "Name the longest river in Africa.",
    "Who discovered penicillin?",
    "What is the plural of mouse?",
    "What does HTML stand for?",
    "Write a JavaScript function that adds two numbers.",
    "Write a Python loop that prints the numbers 1 to 5.",
    "Write a limerick about a cat.",
    "Give me an antonym for fast.",
    "Sort these numbers from smallest to largest: 8, 3, 5, 1.",
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
