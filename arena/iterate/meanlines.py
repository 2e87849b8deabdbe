"""The closing lines of the utility feedback a writer is told, in a matrix game (feedback.py) and in a grid
world (gridworld.py): the worst score an error earns, the means, the best so far, the request."""

from __future__ import annotations


def mean_lines(u: tuple[float, float], worst: tuple[float, float] | None, me: int, best: float | None, *,
               measure: str, other: str, worst_name: str) -> list[str]:
    """`u`: both seats' means; `worst`: both seats' worst scores when an episode ended in an error (None: none
    did); `me`: the writer's seat (0 row, 1 column); `best`: the best mean so far this turn. `measure` names
    what is averaged ("utility", "return"), `other` the other seat, `worst_name` the worst score."""
    lines = []
    if worst is not None:
        lines.append(f"An episode that ended in an error scores {worst_name}: you {worst[me]:g}, "
                     f"{other} {worst[1 - me]:g}.")
    lines.append(f"Mean {measure}: you {u[me]:.3g}, {other} {u[1 - me]:.3g}, both together (social welfare) "
                 f"{u[0] + u[1]:.3g}.")
    if best is not None:
        lines.append(f"The best mean {measure} so far this turn (your current program's included): {best:.3g}.")
    lines.append(f"Improve your program to raise your mean {measure}; reply with the whole program.")
    return lines
