"""Training of the TV-Edit controller (paper Sec. 3.3, Appendix B, Sec. 4.1): data, features, loss, loop."""
