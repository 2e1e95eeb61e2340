#!/bin/bash
# Our solution for the os_interaction "calc" items: a `calc` command that evaluates + - * / and parentheses.
cat > /usr/local/bin/calc <<'PY'
#!/usr/bin/env python3
import ast
import operator
import sys

OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
       ast.USub: operator.neg, ast.UAdd: operator.pos}


def value(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        return OPS[type(node.op)](value(node.left), value(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in OPS:
        return OPS[type(node.op)](value(node.operand))
    raise SystemExit("calc: unsupported expression")


result = value(ast.parse(" ".join(sys.argv[1:]), mode="eval").body)
print(int(result) if float(result).is_integer() else result)
PY
chmod +x /usr/local/bin/calc
