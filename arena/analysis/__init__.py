"""Analysis of stored tournaments: intervals, tables, the meta-game, live tallies, exports and plots."""
