"""Which tests to run first for one mutant (scripts/mutation.sh --runner): the mutated line
(the working file against HEAD: mutmut mutates in place) falls in a function, and the focused
test module's tests about that function (a `-k` expression, printed) run first with -x.  Only an
order: a mutant they do not kill then runs the module's whole list, so what counts as killed or
survived is the same as without this file; a killed mutant just dies sooner (on this shared
2-core machine a whole focused module is 40-70 s a mutant, its tests for one function 10-20 s).
Prints nothing (run everything) for a line outside the functions listed here.
    python scripts/mutation_focus.py app/settlement/operations.py"""
import ast
import subprocess
import sys

FOCUS = {
    "app/settlement/operations.py": {
        "rights_related": "name_list or rights_related",
        "guard_settlement_text": "permit_text or every_text_field or documents",
        "guard_fields": "guard_fields",
        "applications": "lists_of_applications",
        "applications_of_person": "lists_of_applications",
        "permit_by_number": "six_months",
        "guard_extra": "extra_field or guard_fields or refuses_unknown",
        "ensure_towns": "default_towns",
        "towns": "towns_lists",
        "record_permit": "six_months or permit_text",
        "_check_members": "who_may_move",
        "_check_in_jurisdiction": "jurisdiction",
        "_check_basis": "owned_house or rental_or_dormitory or valid_through or collective_house",
        "apply": "apply_ or lists_of or who_may_move",
        "add_document": "documents",
        "_guard_decision": "approve or reject",
        "approve": "approve",
        "reject": "reject",
    },
    "app/rights/operations.py": {
        "_file_record": "complete or compensation_above",
        "record_court_judgment": "what_a_judgment or complete or judgment_must",
        "record_expropriation": "expropriation",
        "_proof": "record_must or needs_it or judgment_must",
        "extend_contract": "current_version",
        "end_right": "ground or current_version or needs_it or record_must or judgment_must or "
                     "expropriation or expiry or expires or household or announced or alone",
    },
    "app/withdrawal/operations.py": {
        "check": "staff_only or unflagged or no_other_part",
        "consent": "agrees_only or adult_co_holder or no_other_part or no_effect",
        "agree_compensation": "compensation_above or no_other_part or against_the_withdrawal",
        "record_payment": "compensation_above or no_other_part",
        "_is_holder": "elses",
        "revoke": "cooling_off_period or elses",
        "_open": "cooling_off_period",
        "take_effect": "no_effect",
    },
}


def mutated_line(path: str) -> int | None:
    diff = subprocess.run(["git", "diff", "-U0", "HEAD", "--", path], capture_output=True,
                          text=True).stdout
    for line in diff.splitlines():
        if line.startswith("@@"):  # @@ -12,1 +12,1 @@
            return int(line.split()[1].lstrip("-").split(",")[0])
    return None


def enclosing_function(path: str, line: int) -> str | None:
    source = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True,
                            text=True).stdout
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno:
            return node.name
    return None


if __name__ == "__main__":
    path = sys.argv[1]
    line = mutated_line(path)
    name = enclosing_function(path, line) if line else None
    print(FOCUS.get(path, {}).get(name, ""))
