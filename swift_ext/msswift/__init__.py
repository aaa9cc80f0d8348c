"""What ms-swift itself defines: its argument schema, typed/bound arguments, argv rendering, its own post-init rules, script import."""
