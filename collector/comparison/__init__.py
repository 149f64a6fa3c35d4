"""The provider comparison a board or a purchasing cooperative decides on (issue 10)."""
