"""The learned parts of graphrec: GNN encoder, MEDN latency model, PSO-W-CatBoost head.

Submodules are imported on first use (torch and CatBoost are heavy):

* :mod:`graphrec.dataset.samples`: :class:`RecDataset` from a results store;
* :mod:`graphrec.recommender.encoder`: :class:`HeteroGraphEncoder`;
* :mod:`graphrec.recommender.medn`: :class:`MEDNRegressor`;
* :mod:`graphrec.recommender.pso_catboost`: :class:`PSOWCatBoostClassifier`;
* :mod:`graphrec.recommender.ranking`: combining both into ranked choices;
* :mod:`graphrec.recommender.artefact`: :class:`RecommenderArtefact` save / load.
"""
