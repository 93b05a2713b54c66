"""One module per feature; bot.app registers their handlers in one ordered list."""
