"""Mean log-probability of the pass key's tokens (teacher forced) in passkey training documents.
usage: LIGHTNING=bin python3 passkey_answer.py MODEL TOKENIZER DOCS.jsonl
DOCS.jsonl: go run ./scripts/corpus passkey -train 8 -repeats MIN:MAX -seed S
A model that cannot look the key up scores about -11.5 nats (five uniform digits)."""
import json, sys
from lib import tokenize, logprobs

model, tok, docs = sys.argv[1:4]
total, first_right, n = 0.0, 0, 0
for line in open(docs):
    d = json.loads(line)
    ids = tokenize(tok, d['text'])
    ans = tokenize(tok, ' ' + d['answer'] + '.')
    assert ids[-len(ans):] == ans, 'the answer does not tokenize at the end of the document'
    start = len(ids) - len(ans)
    lp = logprobs(model, ids, range(start, len(ids) - 1))  # the space and the digits, not the final period
    total += sum(lp)
    n += 1
print('%s: mean log p(key) %.2f nats over %d documents' % (model, total / n, n))
