"""Quizzes: YAML question banks, plain-Python grading, progress, and the notebook widget.

Notebooks call `show_quiz("eventloop", tag="predict")`; tests and the mock interview use
`load_bank`, `grade` and `progress` without a browser.
"""

from backendlab.quiz import progress
from backendlab.quiz.bank import Bank, Choice, Question, QuizError, list_banks, load_bank
from backendlab.quiz.grading import Feedback, Grade, grade, grade_question
from backendlab.quiz.widget import QuestionWidget, QuizWidget, show_quiz

__all__ = [
    "Bank", "Choice", "Feedback", "Grade", "Question", "QuestionWidget", "QuizError",
    "QuizWidget", "grade", "grade_question", "list_banks", "load_bank", "progress", "show_quiz",
]
