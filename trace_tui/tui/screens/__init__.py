"""Explorer screens: the trace list, the trace view, modals (help, feedback, pickers)."""
