"""Explorer widgets: line-API lists (trace table, span waterfall) and their companions."""
