"""The experiments the notebooks run, one module per topic.

Each experiment starts its servers as real processes, drives them over loopback, stops everything
(also on error), and returns a small result object with the numbers to plot and assert.
"""
