"""One question after: how easy paying or agreeing a plan was, asked once per case and occasion."""
