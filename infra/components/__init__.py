"""One construct per capability; stacks in `infra.stacks` only compose these."""
