"""Pure geometry for Sanquan: no Flask, no database."""
