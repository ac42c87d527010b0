"""Whether a chat template treats message contents as opaque text, so that it can be rendered
once per conversation shape instead of once per example.

A template is content-opaque when the contents only ever land in its output as they are (or
all `| trim`med): never tested, compared, measured, sliced, serialized or passed to a function.
Its rendering of any conversation is then the rendering of the same roles with placeholder
contents, with the placeholders replaced by the contents (tuiwiz.data.render uses that). The
check reads the template's syntax tree (Jinja) and refuses whatever it cannot prove: such
templates are rendered per example, exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SAFE, CONTENT, MSG = 0, 1, 2  # what an expression may hold: ordered, the join is max
# Tests whose answer is the same for every string content (and every message dict).
SHAPE_TESTS = frozenset(
    {
        "defined",
        "undefined",
        "none",
        "string",
        "mapping",
        "iterable",
        "sequence",
        "number",
        "integer",
        "float",
        "boolean",
        "true",
        "false",
        "callable",
    }
)
TRANSFORMS: dict[str, Callable[[str], str]] = {"identity": lambda s: s, "trim": str.strip}


class NotOpaque(Exception):
    """The template may depend on what the contents say (the reason is the message)."""


def content_transform(tokenizer: Any) -> Callable[[str], str] | None:
    """What the template does to each content (identity or strip) when it is content-opaque,
    else None."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template

        source = tokenizer.get_chat_template()
        tree = _compile_jinja_template(source).environment.parse(source)
    except Exception:  # noqa: BLE001 - anything unexpected: render per example
        return None
    try:
        transform = Analysis().run(tree)
    except (NotOpaque, RecursionError):
        return None
    except Exception:  # noqa: BLE001 - a syntax tree this walk does not know: per example
        return None
    return TRANSFORMS[transform]


def _key(node: Any) -> str | None:
    """The constant field name of `x.name` or `x["name"]`, else None."""
    from jinja2 import nodes

    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value if isinstance(node.arg.value, str) else None
    return None


class Analysis:
    """A walk of the template that tracks which names may hold messages (MSG) or contents
    (CONTENT), flow-insensitively, until nothing changes."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {"messages": MSG}
        self.transforms: set[str] = set()

    def run(self, tree: Any) -> str:
        for _ in range(10):
            before = dict(self.names)
            self.transforms = set()
            self.block(tree.body)
            if self.names == before:
                break
        else:
            raise NotOpaque("names never settle")
        if len(self.transforms) > 1:
            raise NotOpaque("contents are trimmed in some places and not in others")
        return next(iter(self.transforms), "identity")

    # --- statements ---------------------------------------------------------------------------
    def block(self, body: list[Any]) -> None:
        for node in body:
            self.stmt(node)

    def stmt(self, node: Any) -> None:
        from jinja2 import nodes as n

        if isinstance(node, n.Output):
            for child in node.nodes:
                if self.expr(child) == MSG:
                    raise NotOpaque("a message or a list of them rendered whole")
        elif isinstance(node, n.For):
            if node.recursive:
                raise NotOpaque("recursive loop")
            kind = self.expr(node.iter)
            if kind == CONTENT:
                raise NotOpaque("a loop over a content")
            self.bind(node.target, kind)
            if node.test is not None:
                self.test(node.test)
            self.block(node.body)
            self.block(node.else_)
        elif isinstance(node, n.If):
            self.test(node.test)
            self.block(node.body)
            self.block(node.elif_)
            self.block(node.else_)
        elif isinstance(node, n.Assign):
            kind = self.expr(node.node)
            if isinstance(node.target, n.NSRef) and kind != SAFE:
                raise NotOpaque("a message or content kept in a namespace")
            self.bind(node.target, kind)
        elif isinstance(node, n.AssignBlock):
            if node.filter is not None:
                raise NotOpaque("a filtered block")
            self.block(node.body)
            self.bind(node.target, CONTENT)  # the captured text may hold contents
        elif isinstance(node, n.With):
            for target, value in zip(node.targets, node.values):
                self.bind(target, self.expr(value))
            self.block(node.body)
        elif isinstance(node, (n.Macro, n.CallBlock)):
            if isinstance(node, n.CallBlock):
                self.safe(node.call)
            for default in node.defaults:
                self.safe(default)
            self.block(node.body)
        elif isinstance(node, (n.Scope, n.Block, n.ScopedEvalContextModifier)):
            self.block(node.body)
        elif isinstance(node, n.ExprStmt):
            self.safe(node.node)
        elif not isinstance(node, (n.Continue, n.Break, n.EvalContextModifier)):
            raise NotOpaque(f"unsupported statement {type(node).__name__}")

    def bind(self, target: Any, kind: int) -> None:
        from jinja2 import nodes as n

        names = [target] if isinstance(target, n.Name) else list(target.find_all(n.Name))
        for name in names:
            self.names[name.name] = max(self.names.get(name.name, SAFE), kind)

    def test(self, node: Any) -> None:
        """A condition: it may look at messages (their roles, how many) but not at contents."""
        if self.expr(node) == CONTENT:
            raise NotOpaque("a condition on a content")

    def safe(self, node: Any) -> None:
        if node is not None and self.expr(node) != SAFE:
            raise NotOpaque("a message or content passed to a function or filter")

    # --- expressions --------------------------------------------------------------------------
    def expr(self, node: Any) -> int:  # noqa: C901 - one case per kind of node
        from jinja2 import nodes as n

        if node is None:
            return SAFE
        if isinstance(node, n.TemplateData):
            return SAFE
        if isinstance(node, n.Const):
            if node.value == "content":
                raise NotOpaque("the name 'content' used as a value")
            return SAFE
        if isinstance(node, n.Name):
            return self.names.get(node.name, SAFE)
        if isinstance(node, (n.Getattr, n.Getitem)):
            return self.access(node, trimmed=False)
        if isinstance(node, n.Filter):
            return self.filter(node)
        if isinstance(node, n.Test):
            self.arguments(node)
            if self.expr(node.node) != SAFE and node.name not in SHAPE_TESTS:
                raise NotOpaque(f"test '{node.name}' on a message or content")
            return SAFE
        if isinstance(node, n.Call):
            self.arguments(node)
            target = node.node
            if isinstance(target, (n.Getattr, n.Getitem)):
                if not _is_loop(target.node):
                    self.safe(target.node)  # a method of a message, or of a content
                self.safe(getattr(target, "arg", None))
            else:
                self.safe(target)
            return SAFE
        if isinstance(node, n.CondExpr):
            self.test(node.test)
            return max(self.expr(node.expr1), self.expr(node.expr2))
        if isinstance(node, n.Compare):
            self.safe(node.expr)
            for operand in node.ops:
                self.safe(operand.expr)
            return SAFE
        if isinstance(node, (n.And, n.Or)):
            kinds = (self.expr(node.left), self.expr(node.right))
            if CONTENT in kinds:
                raise NotOpaque("the truth of a content")
            return max(kinds)
        if isinstance(node, n.Not):
            self.test(node.node)
            return SAFE
        if isinstance(node, (n.Add, n.Concat)):
            parts = node.nodes if isinstance(node, n.Concat) else [node.left, node.right]
            kinds = [self.expr(part) for part in parts]
            if MSG in kinds:
                raise NotOpaque("a message joined to text")
            return max(kinds)
        if isinstance(node, (n.BinExpr, n.UnaryExpr)):
            for child in node.iter_child_nodes():
                self.safe(child)
            return SAFE
        if isinstance(node, (n.Tuple, n.List, n.Dict, n.Pair)):
            kinds = [self.expr(child) for child in node.iter_child_nodes()]
            if CONTENT in kinds:
                raise NotOpaque("a content inside a list or dict")
            return max(kinds, default=SAFE)
        if isinstance(node, n.Slice):
            for child in node.iter_child_nodes():
                self.safe(child)
            return SAFE
        if isinstance(node, (n.MarkSafe, n.MarkSafeIfAutoescape)):
            return self.expr(node.expr)
        if isinstance(
            node,
            (n.InternalName, n.ExtensionAttribute, n.ImportedName, n.EnvironmentAttribute, n.NSRef),
        ):
            return SAFE
        raise NotOpaque(f"unsupported expression {type(node).__name__}")

    def arguments(self, node: Any) -> None:
        for arg in node.args:
            self.safe(arg)
        for keyword in node.kwargs:
            self.safe(keyword.value)
        self.safe(node.dyn_args)
        self.safe(node.dyn_kwargs)

    def access(self, node: Any, trimmed: bool) -> int:
        """`x.key` / `x[key]`: a content, a message (element, slice), or a safe field."""
        from jinja2 import nodes as n

        key = _key(node)
        if isinstance(node, n.Getitem) and key is None and not isinstance(node.arg, n.Const):
            self.safe(node.arg)
        if _is_loop(node.node):  # loop.previtem / loop.nextitem are items of the loop
            return MSG if key in ("previtem", "nextitem") else SAFE
        base = self.expr(node.node)
        if base == SAFE:
            return SAFE
        if base == CONTENT:
            raise NotOpaque("a part or attribute of a content")
        if key == "content":
            self.transforms.add("trim" if trimmed else "identity")
            return CONTENT
        if key is None:
            return MSG  # an element, a slice, or a field chosen when rendering
        if isinstance(node, n.Getattr) and (hasattr(dict, key) or hasattr(list, key)):
            raise NotOpaque(f"the method {key} of a message or list of messages")
        return SAFE  # another field (the role): part of the conversation's shape

    def filter(self, node: Any) -> int:
        from jinja2 import nodes as n

        self.arguments(node)
        if node.node is None:
            raise NotOpaque("a filter block")
        # `content | trim`: the one filter a content may take (its effect is str.strip)
        lone_trim = node.name == "trim" and not node.args and not node.kwargs
        of_content = isinstance(node.node, (n.Getattr, n.Getitem)) and _key(node.node) == "content"
        if lone_trim and of_content:
            return self.access(node.node, trimmed=True)
        kind = self.expr(node.node)
        if kind == SAFE:
            return SAFE
        if kind == MSG:
            if node.name in ("length", "count"):
                return SAFE
            if node.name in ("first", "last", "reverse", "list", "selectattr", "rejectattr"):
                return MSG  # a selection of messages (by role: the attribute is no content)
        raise NotOpaque(f"filter '{node.name}' on a message or content")


def _is_loop(node: Any) -> bool:
    from jinja2 import nodes as n

    return isinstance(node, n.Name) and node.name == "loop"
