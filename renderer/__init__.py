"""The renderer: turns a symbol's bars into a Plotly figure, once per change."""
