"""The learned parts of graphrec: GNN encoder, MEDN latency model, PSO-W-CatBoost head.

Submodules are imported on first use (torch and CatBoost are heavy):

* :mod:`graphrec.models.dataset`: :class:`RecDataset` from a results store;
* :mod:`graphrec.models.encoder`: :class:`HeteroGraphEncoder`;
* :mod:`graphrec.models.medn`: :class:`MEDNRegressor`;
* :mod:`graphrec.models.pso_catboost`: :class:`PSOWCatBoostClassifier`;
* :mod:`graphrec.models.ranking`: combining both into ranked choices;
* :mod:`graphrec.models.artefact`: :class:`RecommenderArtefact` save / load.
"""
