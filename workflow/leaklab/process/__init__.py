"""The measured process: how it is built, started, contained and watched from outside."""
