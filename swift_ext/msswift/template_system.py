"""Which of ms-swift 4.6's templates take a system prompt. TemplateMeta.__post_init__
(swift/template/template_meta.py) sets support_system False when the template has neither a system_prefix nor a
{{SYSTEM}} slot in its prompt, and TemplateMeta.check_system asserts "The template does not support `system`" for
any system text it is handed: Template.__init__ for the `system` argument (start-up, both engines), and
Template._get_system for a row's system turn (each such row fails to encode). `pt` (use_chat_template false) uses
TemplateMeta.to_generate_template_meta(), which has no system slot at all.

The set is the installed ms-swift's TEMPLATE_MAPPING filtered on support_system (computing it needs the
TemplateMeta subclasses' defaults, more than registry_reader's reading of the source gives);
tests/test_template_system.py recomputes it from the installed package and fails when they differ."""

from __future__ import annotations

NO_SYSTEM_TEMPLATES = frozenset({
    "bert", "bge_reranker", "cogagent_chat", "cogagent_vqa", "cogvlm", "cogvlm2", "cogvlm2_video", "deepseek_ocr",
    "deepseek_ocr2", "doc_owl2", "dummy", "emu3_gen", "florence", "gemma3_text", "generic_decision",
    "jina_reranker_m0", "molmo", "monkeyocrv2", "paligemma", "qwen3_emb", "unlimited_ocr", "yuan",
})


def chat_template_on(recipe, args) -> bool:
    """use_chat_template as ms-swift resolves it: TemplateArguments turns None into true; `pt`'s dataclass
    (PretrainArguments / MegatronPretrainArguments) defaults it to false."""
    return args.bool("use_chat_template") if args.raw("use_chat_template") is not None else recipe.command != "pt"


def takes_system(template: str, use_chat_template: bool) -> bool:
    """Whether check_system accepts a system text for this template as ms-swift builds it."""
    return use_chat_template and template not in NO_SYSTEM_TEMPLATES


def system_rows_finding(recipe, args, key: str, path: str, system_rows: int, rows: int) -> list:
    """A dataset whose rows carry a system turn, for a template that refuses one: each such row fails in
    Template._get_system. ms-swift drops a row that fails to encode (EncodePreprocessor, or LazyLLMDataset picking
    another row; strict: true raises) -- a warning while some rows remain, an error when every row has one."""
    from swift_ext.msswift.model_table import template_for
    from swift_ext.spec.findings import Finding

    if recipe.command not in ("sft", "pt", "rlhf"):
        return []
    chat = chat_template_on(recipe, args)
    choice = template_for(args.str("model"), args.str("model_type"), args.str("template"))
    if (chat and choice is None) or takes_system(choice.template if choice else "", chat):
        return []
    why = f"template {choice.template} has no system slot" if chat else "use_chat_template is false"
    every = system_rows >= rows
    return [Finding(f"{system_rows} of {rows} row(s) in {path} have a system turn but {why}: ms-swift asserts "
                    "\"The template does not support `system`\" encoding each, and drops the row"
                    + (" -- every row, so nothing is left to train on" if every else ""),
                    code="template-system", severity="error" if every or args.bool("strict") else "warning",
                    hint="drop the system turns (or fold them into the first user turn)", **recipe.where(f"args.{key}"))]
