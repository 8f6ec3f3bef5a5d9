"""The official OpenAI Python SDK, unmodified, against a live Steer server (STEER_BASE_URL, e.g. http://127.0.0.1:8080/v1).

Run by scripts/sdk-tests.sh (test.sh runs it on SmolLM2-135M-Instruct). Answers are greedy (temperature 0) and
short, so the whole file takes seconds; structured outputs use bounded types (a bool, an enum) so that even a small
model's answer completes within the token limit.
"""
import os
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

BASE_URL = os.environ["STEER_BASE_URL"]
client = openai.OpenAI(base_url=BASE_URL, api_key=os.environ.get("STEER_API_KEY", "unused"), max_retries=0, timeout=120)
MODEL = client.models.list().data[0].id


class Verdict(BaseModel):
    ok: bool
    color: Literal["red", "green", "blue"]


# SmolLM2-135M-Instruct answers this greedily in 8 tokens and stops (the stream helpers want a finished answer).
PROMPT = "Name a color. One word only."


def greedy_chat(**kw):
    return client.chat.completions.create(**{"model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
                                             "temperature": 0, "max_tokens": 32, **kw})


# ------------------------------------------------------------------------------------------------ models

def test_models_list_and_retrieve():
    ids = [m.id for m in client.models.list().data]
    assert MODEL in ids
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


# ------------------------------------------------------------------------------------------------ chat completions

def test_chat_streamed_equals_whole():
    whole = greedy_chat()
    text = whole.choices[0].message.content
    assert text and whole.usage.completion_tokens >= 1
    stream = greedy_chat(stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_chat_stream_helper():
    with client.chat.completions.stream(model=MODEL, messages=[{"role": "user", "content": PROMPT}],
                                        temperature=0, max_tokens=32) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == greedy_chat().choices[0].message.content


def test_chat_parse_json_schema():
    c = client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "Is the sky blue? Answer as JSON."}],
                                      response_format=Verdict, temperature=0, max_tokens=40)
    v = c.choices[0].message.parsed
    assert isinstance(v, Verdict) and v.color in ("red", "green", "blue")


def test_chat_errors_map_to_sdk_exceptions():
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as e:
        greedy_chat(temperature=5)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[])


# ------------------------------------------------------------------------------------------------ responses

def test_responses_create():
    r = client.responses.create(model=MODEL, input="Name a color.", instructions="Answer in one word.", temperature=0,
                                max_output_tokens=16)
    assert r.object == "response" and r.status in ("completed", "incomplete")
    assert r.output_text and r.output[0].type == "message" and r.output[0].content[0].type == "output_text"
    assert r.usage.input_tokens > 0 and 1 <= r.usage.output_tokens <= 16
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.instructions == "Answer in one word."


def test_responses_stream_events():
    kw = dict(model=MODEL, input=[{"role": "user", "content": PROMPT}], temperature=0, max_output_tokens=32)
    whole = client.responses.create(**kw)
    events = list(client.responses.create(stream=True, **kw))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text == whole.output_text
    assert events[-1].response.output_text == whole.output_text
    assert events[-1].response.id == events[0].response.id


def test_responses_stream_helper():
    with client.responses.stream(model=MODEL, input=PROMPT, temperature=0, max_output_tokens=32) as s:
        deltas = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    assert final.status == "completed" and final.output_text == deltas


def test_responses_parse_json_schema():
    r = client.responses.parse(model=MODEL, input="Is the sky blue? Answer as JSON.", text_format=Verdict, temperature=0,
                               max_output_tokens=40)
    assert isinstance(r.output_parsed, Verdict)


def test_responses_previous_response_id():
    first = client.responses.create(model=MODEL, input="My name is Ada.", instructions="Be brief.", temperature=0,
                                    max_output_tokens=16)
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id, temperature=0,
                                     max_output_tokens=16)
    assert second.previous_response_id == first.id and second.output_text
    # The history (first input and answer) is in the prompt; the first instructions are not carried over.
    alone = client.responses.create(model=MODEL, input="What is my name?", temperature=0, max_output_tokens=16)
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens


def test_responses_errors():
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_unknown")
    assert e.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}])
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="x", max_output_tokens=0)
    assert e.value.body["param"] == "max_output_tokens"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="x", tools=[{"type": "function", "name": "f", "parameters": {}}])
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input="x")


def test_responses_cut_by_max_output_tokens_are_incomplete():
    r = client.responses.create(model=MODEL, input="Tell me a story.", temperature=0, max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens" and r.usage.output_tokens == 3
    events = list(client.responses.create(model=MODEL, input="Tell me a story.", temperature=0, max_output_tokens=3, stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.output_text == r.output_text


def test_chat_n_choices_seeded_and_reproducible():
    kw = dict(model=MODEL, messages=[{"role": "user", "content": PROMPT}], n=2, seed=5, temperature=1, max_tokens=12)
    a, b = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert [c.index for c in a.choices] == [0, 1]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    streamed = {0: "", 1: ""}
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            streamed[c.index] += c.delta.content or ""
    assert [streamed[0], streamed[1]] == [c.message.content for c in a.choices]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**{**kw, "n": 9})
    assert e.value.body["param"] == "n"


def test_responses_stream_is_steerable_by_its_id():
    import json
    import urllib.request
    events = client.responses.create(model=MODEL, input="Tell me a story.", temperature=0, max_output_tokens=400, stream=True,
                                     extra_body={"ignore_eos": True})
    seen, steered, rid = 0, None, None
    for e in events:
        if e.type == "response.created":
            rid = e.response.id
        elif e.type == "response.output_text.delta":
            seen += 1
            if seen == 4:
                body = json.dumps({"at": 2, "text": " Once upon a time", "max_tokens": 8}).encode()
                req = urllib.request.Request(f"{BASE_URL}/responses/{rid}/steer", data=body, headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {client.api_key}"})
                with urllib.request.urlopen(req, timeout=60) as r:
                    assert r.status == 200
        elif e.type == "response.output_text.steered":
            steered = e.steer["content"] if isinstance(e.steer, dict) else e.steer.content
        elif e.type in ("response.completed", "response.incomplete"):
            final = e.response.output_text
    assert steered and steered.endswith(" Once upon a time") and final.startswith(steered)


# ------------------------------------------------------------------------------------------------ tools

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def valid_weather_args(arguments):
    """The arguments (JSON text) checked against get_weather's schema; returns them parsed."""
    import json
    args = json.loads(arguments)
    assert set(args) == {"city", "unit"}, args
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit"), args
    return args


def tool_chat(**kw):
    return client.chat.completions.create(**{"model": MODEL, "messages": ASK_WEATHER, "tools": [WEATHER],
                                             "temperature": 0, "max_tokens": 80, **kw})


def test_tools_required_call_validates():
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        c = tool_chat(tool_choice=choice)
        assert c.choices[0].finish_reason == "tool_calls"
        (call,) = c.choices[0].message.tool_calls
        assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
        valid_weather_args(call.function.arguments)


def test_tools_auto_answers_in_text_or_a_valid_call():
    m = tool_chat(tool_choice="auto").choices[0].message
    assert m.content or m.tool_calls
    for call in m.tool_calls or []:
        valid_weather_args(call.function.arguments)


def test_tools_streamed_call_reassembles_to_the_whole_one():
    whole = tool_chat(tool_choice="required").choices[0].message.tool_calls[0]
    calls, finish = {}, None
    for chunk in tool_chat(tool_choice="required", stream=True):
        for c in chunk.choices:
            finish = c.finish_reason or finish
            for t in c.delta.tool_calls or []:
                if t.id:  # the first delta of a call names it
                    calls[t.index] = {"id": t.id, "name": t.function.name, "arguments": t.function.arguments or ""}
                else:
                    calls[t.index]["arguments"] += t.function.arguments
    assert finish == "tool_calls" and list(calls) == [0]
    assert calls[0]["name"] == whole.function.name
    assert valid_weather_args(calls[0]["arguments"]) == valid_weather_args(whole.function.arguments)
    # the SDK's own stream helper assembles the same call
    with client.chat.completions.stream(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER], tool_choice="required",
                                        temperature=0, max_tokens=80) as s:
        final = s.get_final_completion()
    assert valid_weather_args(final.choices[0].message.tool_calls[0].function.arguments) == valid_weather_args(whole.function.arguments)


def test_tools_result_in_history_is_answered():
    call = tool_chat(tool_choice="required").choices[0].message.tool_calls[0]
    messages = ASK_WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "sunny"}'}]
    c = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], tool_choice="none",
                                       temperature=0, max_tokens=32)
    assert c.choices[0].message.content and not c.choices[0].message.tool_calls


def test_tools_bad_input_is_a_400():
    with pytest.raises(openai.BadRequestError) as e:
        tool_chat(tool_choice={"type": "function", "function": {"name": "nope"}})
    assert e.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as e:
        tool_chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"x": {"type": "strnig"}}}}}])
    assert e.value.body["param"] == "tools"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools={"not": "a list"})
    assert e.value.body["param"] == "tools"
