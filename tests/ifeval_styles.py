"""Answers in several styles to any IFEval-format prompt, for comparing checkers: generic texts
(plain, markdown, JSON, all caps, lower case, quoted, Spanish) and an answer built from the
prompt's own arguments that tries to follow every instruction, also with a preamble and a
closing line (which only loose scoring forgives), in lower case, and with markdown stars.
Written for the tests; nothing here is trained on."""

from __future__ import annotations

import json

PLAIN = (
    "The river runs past the old mill, and the town grew up around it. Farmers brought grain in the "
    "autumn; the miller kept a ledger of every sack.\n\n"
    "Today the mill is a museum. Visitors can see the wheel turn, read the ledgers and buy bread "
    "baked from flour ground on the same stones! Is it worth a visit? Yes, on a sunny day.\n\n"
    "Mr. Hale, the curator, says about 3,000 people come each year, e.g. school classes and walkers."
)
MARKDOWN = (
    "<<A Short Guide>>\n\n# Overview\n\nSECTION 1\n* first point with *emphasis*\n* second point\n"
    "* third point\n\nSection 2\n- a dash bullet\n\n*highlighted part* and **bold part** here.\n\n***\n\n"
    "P.S. Thanks for reading. [name] will reply from [address]."
)
SPANISH = (
    "El río pasa junto al viejo molino y el pueblo creció a su alrededor. Hoy el molino es un museo "
    "y los visitantes pueden ver cómo gira la rueda."
)
TRICKY = (
    "Sure! Here's a well-known answer, DON'T worry: it's WELL-KNOWN in the U.S. and the U.K.\n\n\n"
    "Section1 covers the mills; SubSection 2 covers the millers... and more. See fig. 3 and p. 4.\n"
    "******\n* * *\n-- not a bullet?\n*   spaced bullet*\n[] and [a [nested] one]\n"
    "p.s. written mid-line, P. S. spaced, and p.p.s too. Wait... what? Yes!! ok\n"
    '"Quoted ending, the end."'
)
GENERIC = {
    "tricky": TRICKY,
    "tricky_json": "```Json\n" + json.dumps({"a": TRICKY[:40]}) + "\n```",
    "tricky_paragraphs": "\n\nFirst para.\n\n\n\nSecond para.\n***\n\n***\nThird.",
    "edge_separators": "******\nOne answer.\n******\nAnother answer.",
    "plain": PLAIN,
    "markdown": MARKDOWN,
    "json": "```json\n" + json.dumps({"answer": PLAIN[:80], "points": [1, 2]}, indent=2) + "\n```",
    "raw_json": json.dumps({"answer": "short"}),
    "upper": PLAIN.upper(),
    "lower": PLAIN.lower(),
    "quoted": '"' + PLAIN + '"',
    "spanish": SPANISH,
    "two_answers": "First answer, short.\n******\nSecond answer, also short.",
    "constrained": "My answer is yes.",
    "one_line": "Done",
}


def _merged(kwargs: list[dict]) -> dict:
    out: dict = {}
    for k in kwargs:
        out.update({name: value for name, value in k.items() if value is not None})
    return out


def attempt(instruction_ids: list[str], kwargs: list[dict], prompt: str) -> str:
    """An answer built to follow the prompt's instructions (it will not always manage: the
    instructions can conflict, and counts are approximate on purpose in places)."""
    a = _merged(kwargs)
    ids = set(instruction_ids)
    body = []
    sentence = "The answer covers the topic in plain words"
    for word in a.get("keywords", []):
        sentence += f" and mentions {word}"
    if "keyword" in a:
        sentence += " " + " ".join(
            [a["keyword"]] * (a.get("frequency", 1) + (1 if a.get("relation") == "at least" else -1))
        )
    if "letter" in a:
        sentence += " " + a["letter"] * max(1, a.get("let_frequency", 1))
    body.append(sentence + ".")
    for i in range(a.get("num_placeholders", 0)):
        body.append(f"Fill in [field{i}] here.")
    for i in range(a.get("num_highlights", 0)):
        body.append(f"This is *highlight {i}* in the text.")
    if "num_bullets" in a:
        body.append("\n".join(f"* bullet {i}" for i in range(a["num_bullets"])))
    if "capital_frequency" in a:
        body.append(
            " ".join(["LOUD"] * (a["capital_frequency"] + (1 if a.get("capital_relation") == "at least" else -1)))
        )
    if "num_sentences" in a:
        count = a["num_sentences"] + (1 if a.get("relation") == "at least" else -1)
        body.append(" ".join(f"Sentence number {i} is here." for i in range(max(1, count))))
    if "num_words" in a:
        count = a["num_words"] + (5 if a.get("relation") == "at least" else -5)
        body.append(" ".join(["word"] * max(1, count)))
    text = "\n".join(body)
    if "num_sections" in a:
        splitter = a.get("section_spliter", "Section")
        text = "\n\n".join(f"{splitter} {i + 1}\n{text}" for i in range(a["num_sections"]))
    if "num_paragraphs" in a and "first_word" in a:
        paragraphs = [text] * a["num_paragraphs"]
        nth = a.get("nth_paragraph", 1) - 1
        if 0 <= nth < len(paragraphs):
            paragraphs[nth] = f"{a['first_word'].capitalize()} {paragraphs[nth]}"
        text = "\n\n".join(paragraphs)
    elif "num_paragraphs" in a:
        text = "\n***\n".join([text] * a["num_paragraphs"])
    if "detectable_format:title" in ids:
        text = "<<A Title>>\n" + text
    if "prompt_to_repeat" in a:
        text = a["prompt_to_repeat"] + "\n" + text
    if "combination:two_responses" in ids:
        text = text + "\n******\n" + text.replace("plain words", "other words")
    if "detectable_format:constrained_response" in ids:
        text = "My answer is no."
    if "end_phrase" in a:
        text = text + "\n" + a["end_phrase"]
    if "postscript_marker" in a:
        text = text + f"\n\n{a['postscript_marker']} one more thing."
    if "detectable_format:json_format" in ids:
        text = json.dumps({"answer": text})
    if "change_case:english_lowercase" in ids:
        text = text.lower()
    if "change_case:english_capital" in ids:
        text = text.upper()
    if "punctuation:no_comma" in ids:
        text = text.replace(",", "")
    if "startend:quotation" in ids:
        text = f'"{text}"'
    if "language" in a and a["language"] == "es":
        text = SPANISH
    return text


def answer_styles(instruction_ids: list[str], kwargs: list[dict], prompt: str) -> dict[str, str]:
    followed = attempt(instruction_ids, kwargs, prompt)
    return {
        **GENERIC,
        "attempt": followed,
        "attempt_wrapped": "Sure, here is my answer:\n" + followed + "\nI hope this helps!",
        "attempt_stars": followed.replace("highlight", "**highlight**"),
        "attempt_lower": followed.lower(),
        "attempt_indented": "  " + followed + "  \n",
    }
