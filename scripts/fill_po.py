"""Fill a catalogue from a {msgid: translation} dict in a Python file; report what is missing.

    python scripts/fill_po.py app/translations/zh/LC_MESSAGES/messages.po TRANSLATIONS.py
"""
import runpy
import sys

from babel.messages.pofile import read_po, write_po

po_path, dict_path = sys.argv[1], sys.argv[2]
table = runpy.run_path(dict_path)["ZH"]
with open(po_path, "rb") as f:
    cat = read_po(f)
missing = []
for m in cat:
    if not m.id:
        continue
    if m.id in table:
        m.string = table[m.id]
        m.flags.discard("fuzzy")
    elif not m.string:
        missing.append(m.id)
with open(po_path, "wb") as f:
    write_po(f, cat, width=100)
for m in missing:
    print("MISSING:", m)
print(f"{len(cat)} messages, {len(missing)} missing")
