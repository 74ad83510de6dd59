"""In-context copying: mean log-probability per token of the first and the second list of copying documents.
usage: LIGHTNING=bin python3 copying.py MODEL TOKENIZER DOCS.jsonl
DOCS.jsonl: go run ./scripts/corpus repeat -words corpus/train.jsonl -n 4 -min 30 -max 40 -seed 77
A model that copies predicts the second list far better than the first."""
import json, sys
from lib import tokenize, logprobs

model, tok, docs = sys.argv[1:4]
firsts, seconds = [], []
for line in open(docs):
    text = json.loads(line)['text']
    head, rest = text.split('\n\n', 1)
    first = rest.split('\n\n')[0]
    ids = tokenize(tok, text)
    n0 = len(tokenize(tok, head + '\n\n'))
    n1 = len(tokenize(tok, head + '\n\n' + first + '\n\n'))
    a = logprobs(model, ids, range(n0 + 1, n1 - 1))
    b = logprobs(model, ids, range(n1 + 1, len(ids) - 1))
    firsts.append(sum(a) / len(a))
    seconds.append(sum(b) / len(b))
print('%s: mean log p per token, first list %.2f, second list %.2f' % (model, sum(firsts) / len(firsts), sum(seconds) / len(seconds)))
