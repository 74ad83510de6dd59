"""Regenerates random_cases.jsonl.gz: random conversations (string, None,
parts, numeric and dict content; tool calls with object or string arguments;
tool results; reasoning_content; tools in OpenAI and bare form; documents;
kwargs) rendered by Python Jinja2 with every template of this directory, set
up as transformers sets it up, strftime_now pinned to 2025-07-01 09:30:00.

Run from this directory: python3 gen_random.py [seed] [count]  (jinja2 3.1.x)
"""
import glob
import gzip
import json
import os
import random
import sys
from datetime import datetime
import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

class AssistantTracker(Extension):
    tags = {"generation"}
    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)
    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()

def raise_exception(message):
    raise TemplateError(message)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
def strftime_now(format):
    return datetime(2025, 7, 1, 9, 30, 0).strftime(format)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now


rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 20250701)
texts = ["Hello!", "", "  padded\t ", "\n\nlead and trail\n\n", "中文内容", "emoji 🧮👨‍👩‍👧 ✔️", "<think>\nhmm\n</think>\n\nanswer",
         "</think>only close", "{{ x }} {% if %}", "quote ' and \" and \\ back", "<beginning_of_sentence>user", "\u3000wide\u00a0nbsp\x1c",
         "tab\tsep", "<tool_response>x</tool_response>", "a" * 50, "line1\nline2\r\nline3", "İstanbul ß ﬁ", "none", "True"]
def rtext():
    t = rng.choice(texts)
    if rng.random() < 0.3: t = t + rng.choice(texts)
    return t
def rcontent(role):
    r = rng.random()
    if r < 0.7: return rtext()
    if r < 0.78: return None
    if r < 0.9: return [{"type": "text", "text": rtext()} for _ in range(rng.randint(0, 2))] + ([{"type": "image", "url": "x"}] if rng.random() < 0.2 else [])
    if r < 0.95: return rng.choice([42, 3.5, True, [], {}])
    return {"text": rtext()}
def rargs():
    d = {"q": rtext(), "n": rng.choice([1, 2.0, 1e-07, 10**17, None, True]), "nested": {"z": [1, "a"], "a": {}}}
    if rng.random() < 0.5: return json.dumps(d, ensure_ascii=rng.random() < 0.5)
    return d
def rmsg(i):
    role = rng.choice(["user"] * 4 + ["assistant"] * 3 + ["system", "tool", "developer"])
    m = {"role": role}
    if rng.random() < 0.95: m["content"] = rcontent(role)
    if role == "assistant" and rng.random() < 0.3:
        m["tool_calls"] = [{"id": f"c{i}{k}", "type": "function", "function": {"name": rng.choice(["f", "get_weather", "搜索"]), "arguments": rargs()}} for k in range(rng.randint(1, 2))]
        if rng.random() < 0.5: m["content"] = rng.choice([None, ""])
    if role == "assistant" and rng.random() < 0.2: m["reasoning_content"] = rng.choice([rtext(), None])
    if role == "tool":
        m["tool_call_id"] = f"c{i}"; 
        if rng.random() < 0.7: m["name"] = "f"
    return m
def rtools():
    r = rng.random()
    if r < 0.5: return None
    if r < 0.6: return []
    out = []
    for k in range(rng.randint(1, 3)):
        fn = {"name": rng.choice(["f", "get_weather", "搜索"]), "description": rtext(), "parameters": {"type": "object", "properties": rng.choice([{"b": {"type": "number", "minimum": 0.0, "description": " B "}, "a": {"type": "string", "enum": ["x", "y"]}}, {}, {"arr": {"type": "array", "items": {"type": "integer"}, "description": "list"}, "u": {"type": ["string", "null"]}, "o": {"type": "object", "additionalProperties": {"type": "boolean"}}, "z": {"type": "mystery"}}]), "required": ["a"]}}
        if rng.random() < 0.2: fn["return"] = {"type": "string", "description": "ret"}
        out.append({"type": "function", "function": fn} if rng.random() < 0.7 else fn)
    return out


def main():
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    templates = {}
    for d in sorted(glob.glob("*/template.jinja")):
        name = os.path.dirname(d)
        st = json.load(open(os.path.join(name, "special_tokens.json")))
        templates[name] = (env.from_string(open(d).read()), st)
    with gzip.open("random_cases.jsonl.gz", "wt", encoding="utf-8") as f:
        for i in range(count):
            msgs = [rmsg(k) for k in range(rng.randint(0, 6))]
            if msgs and rng.random() < 0.3:
                msgs[0] = {"role": "system", "content": rtext()}
            tools = rtools()
            docs = rng.choice([None, None, [{"title": "T", "text": "doc"}]])
            agp = rng.random() < 0.5
            kwargs = rng.choice([{}, {}, {"enable_thinking": False}, {"enable_thinking": True}, {"bos_token": "<B>"}])
            rec = {"id": i, "messages": msgs, "tools": tools, "documents": docs, "add_generation_prompt": agp, "kwargs": kwargs, "results": {}}
            for name, (t, st) in templates.items():
                vars = dict(messages=msgs, tools=tools, documents=docs, add_generation_prompt=agp)
                vars.update(st)
                vars.update(kwargs)
                try:
                    rec["results"][name] = {"rendered": t.render(**vars)}
                except Exception as e:  # noqa: BLE001 - every failure is recorded
                    rec["results"][name] = {"error": {"type": type(e).__name__, "message": str(e)}}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {count} conversations x {len(templates)} templates (jinja2 {jinja2.__version__})")


if __name__ == "__main__":
    main()
