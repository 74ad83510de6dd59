"""Regenerates golden.jsonl: each case rendered by Python Jinja2 set up as
transformers sets it up (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, a pass-through generation tag, json.dumps tojson,
raise_exception, strftime_now pinned to 2025-07-01 09:30:00).

Run from this directory: python3 gen_golden.py  (needs jinja2 3.1.x)
"""
import json
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


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[AssistantTracker, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

# (name, template, vars)
CASES = [
    # --- whitespace control, trim_blocks, lstrip_blocks
    ("ws_trim_block", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("ws_no_trim_var", "{{ 'a' }}\nb", {}),
    ("ws_lstrip", "x\n    {% if true %}\n    in\n    {% endif %}\ny", {}),
    ("ws_lstrip_tabs", "x\n\t \t{% if true %}y{% endif %}", {}),
    ("ws_lstrip_not_var", "x\n    {{ 'v' }}\n", {}),
    ("ws_lstrip_mid_line", "x {% if true %}y{% endif %} z", {}),
    ("ws_minus_both", "a   \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", {}),
    ("ws_minus_var", "a \n {{- 'b' -}} \n c", {}),
    ("ws_plus_lstrip", "x\n    {%+ if true %}y{% endif %}", {}),
    ("ws_plus_trim", "{% if true +%}\ny{% endif %}", {}),
    ("ws_comment", "a\n  {# c #}\nb\n{#- c -#}  \n c", {}),
    ("ws_comment_multiline", "a{# line1\nline2 #}\nb", {}),
    ("ws_trailing_newline", "a\n", {}),
    ("ws_two_trailing_newlines", "a\n\n", {}),
    ("ws_crlf", "a\r\nb\r{% if true %}\r\nc{% endif %}\r\n", {}),
    ("ws_minus_unicode_space", "a\u3000{{- 'b' }}", {}),
    ("ws_raw", "{% raw %}{{ x }}{% if %}{% endraw %}!", {}),
    ("ws_raw_minus", "a  {%- raw -%}  {{ x }}  {%- endraw -%}  b", {}),
    ("ws_line_start_after_trim", "{% set x = 1 %}\n  {% if x %}ok{% endif %}", {}),
    ("ws_var_minus_newline_lstrip", "{{ 'a' -}}\n  {% if true %}b{% endif %}", {}),
    ("ws_block_in_line", "  text {% if true %}\n  more{% endif %}", {}),
    # --- literals
    ("lit_escapes", "{{ 'a\\nb\\tc\\\\d\\'e\\\"f' }}", {}),
    ("lit_unicode_escape", "{{ '\\u2011\\x41\\101\\U0001F600' }}", {}),
    ("lit_unknown_escape", "{{ '\\d\\w' }}", {}),
    ("lit_adjacent", "{{ 'a' 'b' \"c\" }}", {}),
    ("lit_adjacent_quotes", "{{ '{' 'name' ': x}' }}|{{ '{''\"name\"'': x}' }}", {}),
    ("lit_nonascii", "{{ 'héllo 中文 🎉' }}", {}),
    ("lit_numbers", "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 2E-3 }} {{ 00 }} {{ 1_0.5 }}", {}),
    ("err_lit_leading_zero", "{{ 007 }}", {}),
    ("lit_float_repr", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.123 }} {{ -0.0 }}", {}),
    ("lit_bool_none", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", {}),
    ("lit_list_dict_tuple", "{{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': 1} }} {{ (1, 2) }} {{ (1,) }} {{ () }} {{ [] }} {{ {} }}", {}),
    ("lit_repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n', 'tab\\t', '\\x01', '\\x7f', '\\xa0', '\\u200b', 'é'] }}", {}),
    ("lit_tuple_output", "{{ 1, 2 }}", {}),
    ("lit_nested_repr", "{{ {'a': [1, {'b': (2, 'c')}], 'n': none} }}", {}),
    ("lit_bigint", "{{ 2 ** 100 }} {{ 123456789012345678 * 1000 }} {{ -(2 ** 70) // 3 }}", {}),
    # --- arithmetic
    ("arith_basic", "{{ 7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 6 / 3 }}", {}),
    ("arith_negative", "{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 // -2 }} {{ -7.5 // 2 }} {{ -7.5 % 2 }} {{ 7.5 % -2 }}", {}),
    ("arith_float_int", "{{ 1 == 1.0 }} {{ 1 + 2.0 }} {{ true + 1 }} {{ 3 * 1.5 }} {{ 10 - 2.5 }}", {}),
    ("arith_seq", "{{ 'ab' * 3 }} {{ 2 * 'x' }} {{ [1] * 2 }} {{ 'a' * 0 }} {{ 'a' * -1 }} {{ [1, 2] + [3] }}", {}),
    ("arith_unary", "{{ -x }} {{ +x }} {{ -(-3) }} {{ - 2 ** 2 }} {{ (-2) ** 2 }} {{ -1|abs }}", {"x": 5}),
    ("arith_precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }} {{ 1 ~ 2 * 3 }} {{ 'a' ~ (1 + 2) }}", {}),
    ("err_concat_binds_tighter", "{{ 'a' ~ 1 + 2 }}", {}),
    ("arith_filter_precedence", "{{ xs|length - 1 }} {{ 'a' + 'b'|upper }} {{ xs|length > 2 }} {{ -1|abs }} {{ -(xs|length) }}", {"xs": [1, 2, 3]}),
    ("err_neg_binds_before_filter", "{{ -xs|length }}", {"xs": [1, 2, 3]}),
    ("arith_concat", "{{ 'a' ~ none ~ 1 ~ 2.0 ~ true ~ [1] ~ undefined_var }}", {}),
    ("arith_comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 != 1.0 }} {{ none == none }} {{ 'a' == 'a' }} {{ [1] == [1.0] }} {{ {'a': 1} == {'a': 1.0} }}", {}),
    ("arith_in", "{{ 'a' in 'cat' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'x' in undefined_var }} {{ 1.0 in [1] }}", {}),
    ("arith_logic", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' and 'z' }} {{ none or none }} {{ not 0 }} {{ not [] }} {{ [] or {} }}", {}),
    ("arith_ternary", "{{ 'a' if true else 'b' }} {{ 'a' if false else 'b' }} [{{ 'a' if false }}] {{ 1 if 0 else 2 if 0 else 3 }}", {}),
    # --- errors
    ("err_str_plus_none", "{{ 'a' + none }}", {}),
    ("err_str_plus_list", "{{ 'a' + [] }}", {}),
    ("err_int_plus_str", "{{ 1 + 'a' }}", {}),
    ("err_undefined_plus", "{{ x + 'a' }}", {}),
    ("err_plus_undefined", "{{ 'a' + x }}", {}),
    ("err_undefined_attr", "{{ x.y }}", {}),
    ("err_undefined_item", "{{ x['y'] }}", {}),
    ("err_attr_of_missing", "{{ m.content.text }}", {"m": {"role": "user"}}),
    ("err_str_attr_item", "{{ m['content'][0]['text'] }}", {"m": {"content": "hi"}}),
    ("err_none_index", "{{ m['content'][0]['text'] }}", {"m": {"content": None}}),
    ("err_int_index", "{{ m['content'][0]['text'] }}", {"m": {"content": 42}}),
    ("err_list_index_out", "{{ xs[5].a }}", {"xs": [1]}),
    ("err_none_attr", "{{ x.startswith('a') }}", {"x": None}),
    ("err_int_attr", "{{ x.startswith('a') }}", {"x": 3}),
    ("err_list_attr", "{{ x.startswith('a') }}", {"x": []}),
    ("err_in_none", "{{ 'x' in none }}", {}),
    ("err_in_int", "{{ 'x' in 3 }}", {}),
    ("err_int_in_str", "{{ 1 in 'abc' }}", {}),
    ("err_iterate_int", "{% for x in 3 %}{% endfor %}", {}),
    ("err_iterate_none", "{% for x in none %}{% endfor %}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_floordiv_zero", "{{ 1 // 0 }}", {}),
    ("err_mod_zero", "{{ 1 % 0 }}", {}),
    ("err_compare_types", "{{ 1 < 'a' }}", {}),
    ("err_compare_undefined", "{{ x < 1 }}", {}),
    ("err_neg_str", "{{ -'a' }}", {}),
    ("err_call_undefined", "{{ nothing() }}", {}),
    ("err_call_int", "{{ x() }}", {"x": 1}),
    ("err_raise_exception", "{{ raise_exception('Bad role: ' ~ 3) }}", {}),
    ("err_raise_in_loop", "{% for m in ms %}{% if m == 2 %}{{ raise_exception('no 2s') }}{% endif %}{{ m }}{% endfor %}", {"ms": [1, 2]}),
    ("err_syntax_unclosed", "{% if true %}a", {}),
    ("err_syntax_unknown_tag", "{% frobnicate %}", {}),
    ("err_syntax_bad_expr", "{{ 1 + }}", {}),
    ("err_syntax_unclosed_var", "{{ x", {}),
    ("err_syntax_nesting", "{% for x in y %}{% endif %}", {}),
    ("err_unknown_filter", "{{ x|nosuchfilter }}", {}),
    ("err_unknown_filter_in_if", "{% if false %}{{ x|nosuchfilter }}{% endif %}ok", {}),
    ("err_unknown_filter_in_if_run", "{% if true %}{{ x|nosuchfilter }}{% endif %}ok", {}),
    ("err_unknown_test", "{{ x is nosuchtest }}", {}),
    ("err_unsafe_append", "{{ xs.append(1) }}", {"xs": [1]}),
    ("err_unsafe_print", "[{{ xs.append }}]", {"xs": [1]}),
    ("err_dict_update", "{{ d.update({}) }}", {"d": {}}),
    ("err_tojson_undefined", "{{ x|tojson }}", {}),
    ("err_set_non_namespace", "{% set x = 1 %}{% set x.a = 2 %}", {}),
    ("err_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("err_str_join_int", "{{ ','.join([1]) }}", {}),
    ("err_length_generator", "{{ xs|select|length }}", {"xs": [1]}),
    ("err_length_none", "{{ none|length }}", {}),
    ("err_macro_too_many", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("err_macro_bad_kwarg", "{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", {}),
    ("err_undefined_iter_attr", "{% for x in y.z %}{% endfor %}", {"y": {}}),
    ("err_slice_step_zero", "{{ 'abc'[::0] }}", {}),
    ("err_range_too_big", "{{ range(200000)|length }}", {}),
    ("err_last_generator", "{{ xs|select|last }}", {"xs": [1]}),
    ("err_int_filter_undefined", "{{ x|int }}", {}),
    # --- undefined semantics
    ("undef_print", "[{{ x }}][{{ d.missing }}][{{ d['missing'] }}][{{ xs[9] }}]", {"d": {}, "xs": []}),
    ("undef_truthy", "{% if x %}t{% else %}f{% endif %}{% if not d.y %}!{% endif %}", {"d": {}}),
    ("undef_iter", "{% for i in x %}{{ i }}{% else %}empty{% endfor %}", {}),
    ("undef_tests", "{{ x is defined }} {{ x is undefined }} {{ d.a is defined }} {{ x is none }} {{ x is string }} {{ x is iterable }} {{ x is sequence }} {{ x is mapping }} {{ x is callable }}", {"d": {"a": None}}),
    ("undef_filters", "[{{ x|default('dflt') }}][{{ x|d }}][{{ x|trim }}][{{ x|length }}][{{ x|join(',') }}][{{ x|list }}][{{ x|upper }}][{{ x|string }}][{{ x|first }}]", {}),
    ("undef_default_boolean", "{{ ''|default('e', true) }} {{ none|default('n') }} {{ none|default('n', true) }} {{ 0|d(5, boolean=true) }}", {}),
    ("undef_eq", "{{ x == y }} {{ x == none }} {{ x != 1 }}", {}),
    ("undef_in", "{{ 'a' in x }}", {}),
    # --- scoping
    ("scope_for_no_leak", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("scope_for_per_iteration", "{% set x = 1 %}{% for i in range(3) %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("scope_namespace", "{% set ns = namespace(n=0, items=[]) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.n }} {{ ns.items }} {{ ns }}", {}),
    ("scope_if_leaks", "{% if true %}{% set q = 3 %}{% endif %}{{ q }}", {}),
    ("scope_toplevel_rebind", "{% set messages = messages[1:] %}{% for m in messages %}{{ m }}{% endfor %}", {"messages": ["a", "b", "c"]}),
    ("scope_set_block", "{% set y %}{% set z = 1 %}a{{ 1 + 1 }}{% endset %}[{{ z }}]{{ y }}", {}),
    ("scope_set_block_filter", "{% set y | upper | trim %}  hello {% endset %}[{{ y }}]", {}),
    ("scope_filter_block", "{% filter upper %}{% set w = 1 %}abc {{ 'x' }}{% endfilter %}[{{ w }}]", {}),
    ("scope_generation", "{% generation %}{% set w = 1 %}gen {{ 'x' }}{% endgeneration %}[{{ w }}]", {}),
    ("scope_with", "{% set a = 0 %}{% with a = 1, b = a %}{{ a }}{{ b }}{% set c = 3 %}{% endwith %}[{{ a }}{{ c }}]", {}),
    ("scope_macro_late", "{% macro m() %}{{ late }}{% endmacro %}{% set late = 5 %}{{ m() }}", {}),
    ("scope_macro_in_loop", "{% for i in [1] %}{% set a = 1 %}{% macro m() %}{{ a }}{% endmacro %}{% set a = 2 %}{{ m() }}{% endfor %}", {}),
    ("scope_else_no_leak", "{% for i in [] %}{% else %}{% set x = 1 %}{% endfor %}[{{ x }}]", {}),
    ("scope_tuple_set", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = 'xy' %}{{ c }}{{ d }}", {}),
    ("scope_loop_var_overwrite", "{% for m in [1] %}{{ m }}{% set m = 3 %}{{ m }}{% endfor %}", {}),
    # --- loops
    ("loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}),
    ("loop_prev_next", "{% for x in [1, 2, 3] %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.previtem is defined }}]{% endfor %}", {}),
    ("loop_cycle_changed", "{% for x in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(x) }}{% endfor %}", {}),
    ("loop_filter", "{% for x in [1, 2, 3, 4] if x is even %}{{ x }}:{{ loop.index }}/{{ loop.length }}{{ loop.last }} {% endfor %}", {}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 5 %}{% break %}{% endif %}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_else", "{% for x in [] %}x{% else %}none{% endfor %}{% for x in [1] %}{{ x }}{% else %}none{% endfor %}", {}),
    ("loop_dict", "{% for k in d %}{{ k }}{% endfor %} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k, v in d|items %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": 2, "m": 3}}),
    ("loop_nested", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("loop_recursive", "{% for n in tree recursive %}{{ n.name }}{% if n.children %}({{ loop(n.children) }}){% endif %}{{ loop.depth }}{% endfor %}", {"tree": [{"name": "a", "children": [{"name": "b", "children": []}, {"name": "c"}]}, {"name": "d"}]}),
    ("loop_reversed_slice", "{% for m in ms[::-1] %}{{ m }}{% endfor %} {{ ms[1:] }} {{ ms[:-1] }} {{ ms[-2:] }} {{ ms[::2] }} {{ 'hello'[::-1] }} {{ 'hello'[1:3] }} {{ ms[10:] }}", {"ms": [1, 2, 3, 4]}),
    ("loop_unpack", "{% for a, b in [[1, 2], (3, 4), 'xy'] %}{{ a }}{{ b }}{% endfor %}", {}),
    # --- macros
    ("macro_defaults", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Cy', greeting='Hi') }}", {}),
    ("macro_missing_param", "{% macro m(a, b) %}[{{ a }}|{{ b }}|{{ b is defined }}]{% endmacro %}{{ m(1) }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }} {{ varargs }} {{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", {}),
    ("macro_caller", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ 1 + 1 }}{% endcall %}", {}),
    ("macro_caller_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}<{{ item }}>{% endcall %}", {}),
    ("macro_recursive", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("macro_returns_string", "{% macro m() %}42{% endmacro %}{{ m() is string }} {{ m() ~ 1 }} {{ m()|length }}", {}),
    ("macro_whitespace", "{%- macro text_of(c) -%}\n    {%- if c is string -%}\n        {{ c }}\n    {%- else -%}\n        {{ c | map(attribute='text') | join('|') }}\n    {%- endif -%}\n{%- endmacro -%}\n[{{ text_of('a') }}][{{ text_of([{'text': 'x'}, {'text': 'y'}]) }}]", {}),
    # --- filters
    ("filter_trim", "[{{ '  a b  '|trim }}][{{ 'xxaxx'|trim('x') }}][{{ none|trim }}][{{ [1]|trim }}][{{ '\\u3000a\\xa0\\x1c'|trim }}]", {}),
    ("filter_string_case", "{{ 'hello WORLD'|upper }} {{ 'Hello'|lower }} {{ 'hello world'|capitalize }} {{ 'ßtraße ﬁne'|upper }} {{ 'İ'|lower|length }}", {}),
    ("filter_title", "{{ 'hello world-foo(bar)[baz]{qux}<quux> o\\'neil x_y 3rd'|title }}|{{ '<beginning_of_sentence>'|title }}|{{ '{% raw %}not'|title }}|{{ 'ǆungla'|title }}", {}),
    ("filter_join_map", "{{ xs|map(attribute='n')|join(', ') }} {{ xs|map(attribute='missing', default='?')|join }} {{ ['a', 'b']|map('upper')|list }} {{ xs|join(',', attribute='n') }}", {"xs": [{"n": 1}, {"n": 2}]}),
    ("filter_select", "{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='c')|list }} {{ ms|rejectattr('role', 'eq', 'user')|list|length }} {{ [1, 2, 3, 4]|select('odd')|list }} {{ [0, 1, '', 'a']|select|list }} {{ [1, 2, 3]|reject('gt', 1)|list }} {{ ms|selectattr('flag')|list }}", {"ms": [{"role": "user", "c": "a"}, {"role": "bot", "c": "b", "flag": True}, {"role": "user", "c": "c"}]}),
    ("filter_generator_truthy", "{% if [1]|select('none') %}truthy{% endif %} {{ ([]|select)|list }}", {}),
    ("filter_unique_list", "{{ ['a', 'A', 'b', 'a']|unique|list }} {{ ['a', 'A']|unique(case_sensitive=true)|list }} {{ 'hello'|list }} {{ {'a': 1}|list }}", {}),
    ("filter_first_last_length", "{{ [3, 4]|first }} {{ [3, 4]|last }} {{ 'abc'|first }} {{ 'abc'|last }} {{ [1, 2]|length }} {{ 'héllo'|length }} {{ {'a': 1}|count }} [{{ []|first }}] [{{ []|last }}]", {}),
    ("filter_int_float", "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ -3.9|int }} {{ '0x1A'|int(0, 16) }} {{ '1_000'|int }} {{ '3.5'|float }} {{ 'x'|float }} {{ 2|float }} {{ true|int }} {{ none|int }} {{ ' 12 '|int }}", {}),
    ("filter_round_abs", "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 42.55|round(1, 'floor') }} {{ 42.51|round(1, 'ceil') }} {{ 5|round }} {{ -3|abs }} {{ -2.5|abs }} {{ 1234.5|round(-2) }}", {}),
    ("filter_replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} {{ 123|replace('2', 'x') }}", {}),
    ("filter_tojson_basic", "{{ d|tojson }}", {"d": {"b": 1, "a": [1.0, 0.0, 1e-07, 1e+16, 123456789012345678, True, None, "x<>&'\"\\/\u2028\u007f\u001b\n\t"], "z": {"emoji": "🧮", "zh": "中文"}}}),
    ("filter_tojson_kwargs", "{{ d|tojson(indent=2) }}|{{ d|tojson(separators=(',', ':')) }}|{{ d|tojson(sort_keys=true) }}|{{ d|tojson(ensure_ascii=true) }}|{{ d|tojson(indent=0) }}|{{ d|tojson(indent='\\t') }}|{{ []|tojson(indent=2) }}|{{ {}|tojson(indent=2) }}", {"d": {"b": [1, {"c": "é🧮"}], "a": {}}}),
    ("filter_tojson_scalars", "{{ 'a\"b'|tojson }} {{ 1|tojson }} {{ 1.5|tojson }} {{ none|tojson }} {{ true|tojson }} {{ (1, 'a')|tojson }} {{ {1: 'a', none: 2, true: 3, 1.5: 4}|tojson }}", {}),
    ("filter_tojson_generator_error", "{{ [1]|select|tojson }}", {}),
    ("filter_tojson_positional", "{{ 'é'|tojson(true) }}", {}),
    ("filter_dictsort_sort", "{{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ d|dictsort(by='value') }} {{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ xs|sort(attribute='n', reverse=true)|map(attribute='n')|list }}", {"d": {"b": 2, "a": 3, "C": 1}, "xs": [{"n": 1}, {"n": 3}, {"n": 2}]}),
    ("filter_batch_slice", "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 0)|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }}", {}),
    ("filter_min_max_sum", "{{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ ['b', 'A']|min }} {{ [1, 2, 3]|sum }} {{ xs|sum(attribute='n') }} {{ [1.5, 2]|sum(start=1) }}", {"xs": [{"n": 1}, {"n": 2}]}),
    ("filter_reverse", "{{ 'abc'|reverse }} {{ [1, 2, 3]|reverse|list }}", {}),
    ("filter_center_indent_truncate", "[{{ 'ab'|center(7) }}][{{ 'a\\nb\\n\\nc'|indent(2) }}][{{ 'a\\nb'|indent(2, true) }}][{{ 'a\\n\\nb'|indent('> ', blank=true) }}][{{ 'foo bar baz qux'|truncate(9) }}][{{ 'foo bar baz qux'|truncate(9, true) }}][{{ 'foo bar baz qux'|truncate(11) }}]", {}),
    ("filter_format_wordcount", "{{ '%s, %s!'|format('Hi', 'Bob') }} {{ '%d items, %.2f avg, %5s|%-5s|'|format(3, 2.5, 'x', 'y') }} {{ '%(a)s-%(b)s'|format(a=1, b=2) }} {{ 'hello big world'|wordcount }}", {}),
    ("filter_groupby", "{% for g, items in xs|groupby('k') %}{{ g }}:{{ items|map(attribute='v')|join }};{% endfor %}", {"xs": [{"k": "b", "v": 1}, {"k": "a", "v": 2}, {"k": "b", "v": 3}]}),
    ("filter_attr_escape", "{{ d|attr('keys') is callable }} [{{ d|attr('x') }}] {{ '<a href=\"x\">&\\'</a>'|e }}", {"d": {"x": 1}}),
    # --- tests
    ("test_types", "{{ 'a' is string }} {{ 1 is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ true is integer }} {{ true is boolean }} {{ none is none }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ [] is sequence }} {{ {} is sequence }}", {}),
    ("test_values", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ false is false }} {{ 0 is false }} {{ true is true }} {{ 1 is true }} {{ none is sameas none }} {{ 2 is in [1, 2] }} {{ 2 is gt 1 }} {{ 'a' is eq 'a' }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ x is not defined }}", {}),
    ("test_negation_chain", "{{ not x is defined }} {{ x is not none and true }} {{ 'a' is string or false }}", {"x": 1}),
    # --- methods
    ("method_str", "{{ '  a  '.strip() }}|{{ 'xxa'.lstrip('x') }}|{{ 'a\\n\\n'.rstrip('\\n') }}|{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'Hi there'.startswith('Hi') }}|{{ 'x.py'.endswith(('.py', '.js')) }}|{{ 'abc'.upper() }}|{{ 'ABC'.lower() }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'hello world'.title() }}|{{ 'hello'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.count('l') }}|{{ 'x'.find('y') }}", {}),
    ("method_str_more", "{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '{} and {}'.format(1, 'b') }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{name}:{n:>4}|{f:.2f}'.format(name='a', n=7, f=3.14159) }}|{{ '-'.join(['a', 'b']) }}|{{ 'abc'.center(7, '*') }}|{{ '42'.zfill(5) }}|{{ 'a=b=c'.partition('=') }}|{{ '123'.isdigit() }}|{{ 'ab'.isalpha() }}|{{ ' '.isspace() }}|{{ 'they\\'re bill\\'s'.title() }}|{{ 'hello'.capitalize() }}|{{ 'abc'.removeprefix('a') }}", {}),
    ("method_dict", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.keys() }} {{ d['items'] }} {{ d.items is callable }}", {"d": {"a": 1, "b": [2], "items": "x"}}),
    ("method_list", "{{ xs.index(2) }} {{ xs.count(1) }} {{ xs|length }}", {"xs": [1, 2, 1]}),
    ("method_split_whitespace_unicode", "{{ 'a\\u3000b\\xa0c\\x1cd'.split() }} {{ '  a b '.split(none, 1) }} {{ ' a b  '.rsplit(none, 1) }}", {}),
    # --- globals
    ("global_range", "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }}", {}),
    ("global_dict_namespace", "{{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }} {% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }} [{{ ns.c }}]", {}),
    ("global_cycler_joiner", "{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }} {% set j = joiner('|') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}),
    ("global_strftime", "{{ strftime_now('%Y-%m-%d %A %H:%M:%S %b %B %a %d %j %p %I %y %%') }} [{{ strftime_now('%z%Z') }}] {{ strftime_now('%-d %-m') }} {{ strftime_now('%c|%x|%X') }}", {}),
    # --- misc
    ("misc_print_tag", "{% print 'a', 1 %}", {}),
    ("misc_is_chain_precedence", "{{ 1 + 1 is odd }} {{ [1] + [2] | length }}", {}),
    ("misc_getattr_vs_item", "{{ d.keys is callable }} {{ d['keys'] }} {{ ns.x }} {{ ns['x'] }} {{ loopish }}", {"d": {"keys": "K"}, "ns": {"x": 5}}),
    ("misc_dotted_int", "{{ xs.0 }} {{ xs.1.a }}", {"xs": [7, {"a": 8}]}),
    ("misc_dict_literal_keys", "{{ {1: 'a', 1.0: 'b', true: 'c'} }} {{ {'a': 1, 'a': 2} }}", {}),
    ("misc_string_percent", "{{ '%s=%d' % ('a', 3) }} {{ '%s' % none }} {{ '%05.1f|%x|%o|%e|%g|%r' % (3.14159, 255, 8, 12345.678, 0.00001234, 'q') }}", {}),
    ("misc_none_content_trim", "{{ content | trim }} {{ content is none }}", {"content": None}),
    ("misc_deep_json_order", "{{ tools|tojson }}", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"z": {"type": "number", "minimum": 0.0, "maximum": 1e+16}, "a": {"type": "string", "enum": ["x", "y"]}}, "required": ["z"]}}}]}),
    ("misc_big_json_int", "{{ n }} {{ n + 1 }} {{ n|tojson }} {{ f }} {{ f|tojson }}", {"n": 123456789012345678901234567890, "f": 1e300}),
    ("misc_generation_in_loop", "{% for c in cs %}{% generation %}{{ c }}{% endgeneration %}{% endfor %}", {"cs": ["a", "b"]}),
    ("misc_loop_outside", "[{{ loop }}][{{ loop is defined }}]", {}),
    ("misc_loop_index_arith", "{% for m in ms %}{% if (m == 'u') != (loop.index0 % 2 == 0) %}X{% endif %}{{ m }}{% endfor %}", {"ms": ["u", "a", "u", "u"]}),
    ("misc_set_then_use_filtered", "{% set n = ms|selectattr('role', 'equalto', 'user')|list|length %}{{ n }}", {"ms": [{"role": "user"}, {"role": "x"}]}),
    ("misc_string_compare_unicode", "{{ 'é' > 'z' }} {{ ['b', 'a', 'é', 'Z']|sort(case_sensitive=true) }}", {}),
    ("misc_multiline_expr", "{{ [\n  1,\n  2\n]|length }}{%\n  if true\n%}\nok{% endif %}", {}),
    ("misc_brace_in_string_in_tag", "{{ '}}' }}{{ {'a': '%}'}['a'] }}", {}),
    ("misc_nested_braces", "{{ {'a': {'b': 1}}['a']['b'] }}", {}),
    # --- second batch: assorted edge cases
    ("edge_inline_if_undefined_hint", "{{ ('a' if false) + 'b' }}", {}),
    ("edge_empty_list_attr", "[{{ ms[0]['role'] }}]", {"ms": []}),
    ("err_empty_list_attr_chain", "{{ ms[0].role.x }}", {"ms": []}),
    ("edge_qwen_think_split", "{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}", {"c": "<think>\nplan\n</think>\n\nanswer"}),
    ("err_namespace_missing_attr", "{% set ns = namespace() %}{{ ns.c + 1 }}", {}),
    ("edge_trailing_commas", "{{ {'a': 1,} }} {{ [1,] }} {{ dict(a=1,) }} {{ (1,) }}", {}),
    ("edge_indexing", "{{ (1, 2)[0] }} {{ 'abc'[-1] }} {{ [1, 2, 3][-1] }} [{{ 'abc'[5] }}] {{ [1, 2][true] }}", {}),
    ("edge_none_slice_print", "[{{ x[1:] }}]", {"x": None}),
    ("err_none_slice_attr", "{{ x[1:].y }}", {"x": None}),
    ("edge_not_precedence", "{{ not true == false }} {{ not 1 in [1] }} {{ 1 if x is defined and x > 0 else 2 }}", {"x": 3}),
    ("edge_adjacent_then_filter", "{{ 'a' 'b' | upper }}", {}),
    ("edge_rebind", "{% set x = 1 %}{% set x = x + 1 %}{{ x }}", {}),
    ("edge_macro_ws", "{% macro m() -%}\n  x\n{%- endmacro %}[{{ m() }}]", {}),
    ("edge_unicode_name", "{% set café = 1 %}{{ café }}", {}),
    ("edge_comment_with_braces", "a{# {{ x }} {% if %} #}b{{ '{{' }}", {}),
    ("edge_floats", "{{ 0.1 * 3 }} {{ 1 / 3 }} {{ 2 / 3 }} {{ 1e22 }} {{ 1.5e-10 }} {{ 100.0 }} {{ 12345678901234567.0 }} {{ 1e308 * 10 }} {{ 3.0 // 2 }} {{ 2 ** 0.5 }} {{ 4 ** 0.5 }} {{ 10 ** 20 }} {{ 2 ** 63 / 3 }} {{ -1e-7 }}", {}),
    ("edge_float_input", "{{ xs }} {{ xs|tojson }} {{ xs|sum }}", {"xs": [1.0, 0.5, 1e-07, 1e+16, 2.5e-05, -0.0, 3.14159]}),
    ("edge_kwargs_filter", "{{ [1, 2]|join(d='-') }} {{ 'abc'|truncate(length=5, end='!', leeway=0) }}", {}),
    ("edge_elif", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %} {% endfor %}", {}),
    ("edge_loop_break_length", "{% for x in range(5) %}{{ loop.length }}{% if loop.index == 2 %}{% break %}{% endif %}{% endfor %}", {}),
    ("edge_sameas_escaped", "{{ false is sameas false }} {{ 0 is sameas false }} {{ 'a' is escaped }} {{ 3 is divisibleby(3) }}", {}),
    ("edge_items_print", "{{ d.items() }} {{ d.values() }}", {"d": {"a": 1}}),
    ("edge_string_of_values", "{{ [1, 2]|string }} {{ none|string }} {{ 1.0|string }} {{ true|string|upper }}", {}),
    ("edge_str_format_misc", "{{ '{:>5}|{:<5}|{:^5}|{:05d}|{:,}|{:.3}|{:e}|{:%}|{:x}|{!r}'.format('a', 'b', 'c', 42, 1234567, 3.14159, 12345.678, 0.25, 255, 'q') }}", {}),
    ("edge_percent_misc", "{{ '%5.2f%%' % 99.5 }} {{ '%-4d|' % 7 }} {{ '%+d' % 5 }} {{ '%c%c' % (72, 'i') }} {{ '%#x %#o' % (255, 8) }} {{ '%s' % [1, 2] }} {{ '%s %s' % (none, true) }}", {}),
    ("err_percent_args", "{{ '%s %s' % ('a',) }}", {}),
    ("edge_with_namespace_in_macro", "{% set ns = namespace(n=0) %}{% macro bump() %}{% set ns.n = ns.n + 1 %}{% endmacro %}{{ bump() }}{{ bump() }}{{ ns.n }}", {}),
    ("edge_loop_in_macro_break", "{% macro m(xs) %}{% for x in xs %}{% if x > 1 %}{% break %}{% endif %}{{ x }}{% endfor %}{% endmacro %}{{ m([1, 2, 3]) }}", {}),
    ("edge_caller_param", "{% macro m(caller) %}[{{ caller }}]{% endmacro %}{{ m(1) }}", {}),
    ("edge_set_ns_tuple", "{% set ns = namespace(a=0) %}{% set ns.a = 1, 2 %}{{ ns.a }}", {}),
    ("edge_dict_in_and_get", "{{ 'tool_calls' in m }} {{ 'x' in m }} {{ m.get('tool_calls', [])|length }}", {"m": {"role": "assistant", "tool_calls": [{"id": 1}]}}),
    ("edge_message_loop_realistic", "{%- for message in messages %}\n{%- if message.role == 'user' %}\n<u>{{ message.content | trim }}</u>\n{%- elif message.role == 'assistant' %}\n<a>{{ message.content }}</a>\n{%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n<a>\n{%- endif %}\n", {"messages": [{"role": "user", "content": "  hi  "}, {"role": "assistant", "content": "yo"}], "add_generation_prompt": True}),
    ("edge_lstrip_comment_line", "a\n    {# note #}\nb\n  {#- x -#}\n  c", {}),
    ("edge_raw_lstrip", "x\n  {% raw %}  {{ y }}\n  {% endraw %}\nz", {}),
    ("edge_var_at_line_start_not_stripped", "a\n  {{- 'b' }}\n  {{ 'c' }}", {}),
    ("edge_block_end_minus_then_text", "{% if true -%}   \n\n  x{%- endif %}", {}),
    ("edge_plus_minus_mix", "a  {%+ if true -%}  b  {%- endif +%}\n  c", {}),
    ("edge_int_float_equality_keys", "{{ {1: 'a'}[1.0] }} {{ {'1': 'a'}.get(1, 'none') }} {{ [1, 2, 3].index(2.0) }}", {}),
    ("edge_unique_attribute", "{{ xs|unique(attribute='k')|map(attribute='v')|list }}", {"xs": [{"k": "a", "v": 1}, {"k": "A", "v": 2}, {"k": "b", "v": 3}]}),
    ("edge_first_generator", "{{ xs|select('odd')|first }} {{ xs|map('string')|first }}", {"xs": [2, 3, 5]}),
    ("edge_list_of_generator_twice", "{% set g = [1, 2]|select %}{{ g|list }}{{ g|list }}", {}),
    ("edge_map_filter_args", "{{ ['a b', 'c d']|map('replace', ' ', '_')|join(',') }} {{ [1.55, 2.45]|map('round', 1)|list }}", {}),
    ("edge_dictsort_case", "{{ {'b': 1, 'A': 2, 'a': 3}|dictsort(true) }}", {}),
    ("edge_length_of_string_unicode", "{{ '🧮中é'|length }} {{ '🧮中é'[1] }} {{ '🧮中é'[::-1] }} {{ '🧮中é'|upper }}", {}),
    ("edge_strip_chars", "{{ '<<a>>'.strip('<>') }} {{ 'ab'.strip('') }} {{ '\n\tx\n'.strip() }}", {}),
    ("edge_startswith_range", "{{ 'hello'.startswith('ll', 2) }} {{ 'hello'.endswith('ll', 0, 4) }} {{ 'hello'.find('l', 3) }}", {}),
    ("edge_big_loop", "{% set ns = namespace(t=0) %}{% for i in range(1000) %}{% set ns.t = ns.t + i %}{% endfor %}{{ ns.t }}", {}),
]


def render(src, vars):
    try:
        t = env.from_string(src)
        return {"rendered": t.render(**vars)}
    except Exception as e:  # noqa: BLE001 - every failure is recorded
        return {"error": {"type": type(e).__name__, "message": str(e)}}


def main():
    with open("golden.jsonl", "w", encoding="utf-8") as f:
        seen = set()
        for name, src, vars in CASES:
            assert name not in seen, name
            seen.add(name)
            rec = {"name": name, "template": src, "vars": vars}
            rec.update(render(src, vars))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(CASES)} cases (jinja2 {jinja2.__version__})")


if __name__ == "__main__":
    main()
