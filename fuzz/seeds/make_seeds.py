#!/usr/bin/env python3
"""Writes the starting inputs of the fuzz targets into fuzz/corpus/<target>/.

The fuzzers start from real conversations, so they reach deep states at
once: the C: lines of the transcripts (tests/transcripts/), the scenario
files (scenarios/) and a few DNS questions. Run from the repository root;
then `cargo fuzz cmin` keeps the inputs that add coverage (fuzz/README.md).
"""
import hashlib, os, re, struct, glob

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def write(target, data):
    folder = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(folder, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)

def unescape(text):
    text = re.sub(r"\{(\d+)\*(.)\}", lambda m: m.group(2) * int(m.group(1)), text)
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())

def client_bytes(path, literal_letters=False):
    out = b""
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.match(r"^C\d?: ?(.*)$", line)
        if m:
            out += unescape(m.group(1)) + b"\r\n"
        elif literal_letters and line.startswith("L: "):
            out += line[3:].encode() + b"\r\n"
        elif literal_letters and line.startswith("B: "):
            out += line[3:].encode()
    return out

for path in sorted(glob.glob(os.path.join(ROOT, "tests/transcripts/smtp/*.txt"))):
    text = open(path).read()
    flags = (1 if "! role submission" in text else 0) | (2 if "! tls" in text else 0)
    flags |= 4 if "max_message_size" in text else 0
    flags |= 8 if "max_recipients" in text else 0
    for chunk in (b"\x04", b"\x00"):  # all at once; one byte per read
        write("smtp", bytes([flags]) + chunk + client_bytes(path))

for path in sorted(glob.glob(os.path.join(ROOT, "tests/transcripts/pop3/*.txt"))):
    write("pop3", b"\x04" + client_bytes(path))

for path in sorted(glob.glob(os.path.join(ROOT, "tests/transcripts/imap/*.txt"))):
    write("imap", client_bytes(path, literal_letters=True))

for path in sorted(glob.glob(os.path.join(ROOT, "scenarios/*.json"))):
    write("scenario", open(path, "rb").read())

def question(qid, name, qtype, flags=0x0100):
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)

for qid, (name, qtype) in enumerate([("example.org", 15), ("mx1.example.org", 1), ("example.org", 16), ("nowhere.test", 15),
                                     ("mx1.example.org", 28), ("school.test", 6), ("www.example.org", 5), ("example.org", 255)]):
    write("dns", question(qid + 1, name, qtype))
write("dns", question(99, "example.org", 15, flags=0x2800))  # an UPDATE
write("dns", question(100, "example.org", 15)[:12] + b"\xc0\x0c\x00\x0f\x00\x01")  # a pointer loop
