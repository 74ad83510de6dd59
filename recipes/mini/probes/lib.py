"""Shared helpers of the probes: run the lightning CLI, read its logits file (standard library only)."""
import json, math, os, struct, subprocess, tempfile

LIGHTNING = os.environ.get('LIGHTNING', 'lightning')


def tokenize(tok, text):
    """Token ids of text with the tokenizer folder tok."""
    out = subprocess.run([LIGHTNING, 'tokenize', '-tokenizer', tok], input=text, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def logprobs(model, ids, positions):
    """log p(ids[j] | ids[:j]) under model for each j in positions (j >= 1)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'logits.safetensors')
        subprocess.run([LIGHTNING, 'logits', '-model', model, '-ids', ','.join(map(str, ids)), '-o', path],
                       check=True, capture_output=True)
        raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    _, vocab = hdr['logits']['shape']
    base = 8 + n + hdr['logits']['data_offsets'][0]
    out = []
    for j in positions:
        row = struct.unpack_from('<%df' % vocab, raw, base + 4 * vocab * (j - 1))
        m = max(row)
        out.append(row[ids[j]] - m - math.log(sum(math.exp(x - m) for x in row)))
    return out
