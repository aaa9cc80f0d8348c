import ast, sys, pathlib
root = pathlib.Path("/work/main/.venv/lib/python3.11/site-packages/megatron/core")
files = sys.argv[1:]
for f in files:
    src = (root/f).read_text()
    tree = ast.parse(src)
    lines = src.splitlines()
    def walk(node, fn):
        for ch in ast.iter_child_nodes(node):
            name = fn
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = ch.name
            if isinstance(ch, ast.ClassDef):
                name = ch.name
            if isinstance(ch, ast.Assert):
                print(f"{f}\t{name}\t{ch.lineno}\tassert {ast.unparse(ch.test)[:100]}")
            elif isinstance(ch, ast.Raise):
                print(f"{f}\t{name}\t{ch.lineno}\traise {ast.unparse(ch.exc)[:100] if ch.exc else ''}")
            walk(ch, name)
    walk(tree, "<module>")
